#!/usr/bin/env python3
"""aiohttp_chat — a small chat server that emits a signed webhook per event.

Rooms, joins and messages over plain HTTP POST (and a websocket per member);
every join, leave and message becomes an event delivered by libwebhook,
driven by asyncio through ``await engine.attach()`` — no polling task.

    PYTHONPATH=build/python python3 examples/python/aiohttp_chat.py \\
        --port 8080 --webhook http://127.0.0.1:9000/hook --secret whsec_...

    curl -XPOST localhost:8080/rooms/lobby/join -d '{"user":"ann"}'
    curl -XPOST localhost:8080/rooms/lobby/messages -d '{"user":"ann","text":"hi"}'
    curl localhost:8080/rooms/lobby
    websocat ws://localhost:8080/rooms/lobby/ws?user=bob     # optional

Events: member.joined, member.left, message.sent, on channel "room-<name>".
``--selftest N`` starts the server, has two members exchange N messages
through its HTTP API, waits for every webhook (``aflush``) and prints one
JSON line with the counts, then exits (the test suite runs it).
"""
import argparse
import asyncio
import json
import sys
import time

from aiohttp import ClientSession, WSMsgType, web

import libwebhook


class Chat:
    def __init__(self, engine: libwebhook.Engine) -> None:
        self.engine = engine
        self.rooms: dict = {}      # name -> {"members": set, "messages": list, "sockets": set}
        self.outcomes = {"delivered": 0, "retry": 0, "dead": 0}

    def room(self, name: str) -> dict:
        return self.rooms.setdefault(name, {"members": set(), "messages": [], "sockets": set()})

    def event(self, kind: str, room: str, **data) -> None:
        # a webhook per chat event; the asyncio loop delivers it
        self.engine.emit(kind, {"room": room, "at_ms": int(time.time() * 1000), **data},
                         channel=f"room-{room}")

    async def broadcast(self, room: str, msg: dict) -> None:
        for ws in list(self.room(room)["sockets"]):
            await ws.send_json(msg)

    # ---- HTTP handlers
    async def join(self, request: web.Request) -> web.Response:
        name = request.match_info["room"]
        user = (await request.json())["user"]
        r = self.room(name)
        if user not in r["members"]:
            r["members"].add(user)
            self.event("member.joined", name, user=user)
            await self.broadcast(name, {"joined": user})
        return web.json_response({"room": name, "members": sorted(r["members"])})

    async def leave(self, request: web.Request) -> web.Response:
        name = request.match_info["room"]
        user = (await request.json())["user"]
        r = self.room(name)
        if user in r["members"]:
            r["members"].discard(user)
            self.event("member.left", name, user=user)
            await self.broadcast(name, {"left": user})
        return web.json_response({"room": name, "members": sorted(r["members"])})

    async def message(self, request: web.Request) -> web.Response:
        name = request.match_info["room"]
        body = await request.json()
        r = self.room(name)
        if body["user"] not in r["members"]:
            return web.json_response({"error": "join the room first"}, status=403)
        msg = {"user": body["user"], "text": body["text"], "seq": len(r["messages"]) + 1}
        r["messages"].append(msg)
        self.event("message.sent", name, **msg)
        await self.broadcast(name, msg)
        return web.json_response(msg, status=201)

    async def show(self, request: web.Request) -> web.Response:
        r = self.room(request.match_info["room"])
        return web.json_response({"members": sorted(r["members"]), "messages": r["messages"][-50:]})

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        name, user = request.match_info["room"], request.query.get("user", "anon")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        r = self.room(name)
        r["sockets"].add(ws)
        r["members"].add(user)
        self.event("member.joined", name, user=user)
        try:
            async for m in ws:
                if m.type == WSMsgType.TEXT:
                    msg = {"user": user, "text": m.data, "seq": len(r["messages"]) + 1}
                    r["messages"].append(msg)
                    self.event("message.sent", name, **msg)
                    await self.broadcast(name, msg)
        finally:
            r["sockets"].discard(ws)
            r["members"].discard(user)
            self.event("member.left", name, user=user)
        return ws


def make_app(chat: Chat) -> web.Application:
    app = web.Application()
    app.router.add_post("/rooms/{room}/join", chat.join)
    app.router.add_post("/rooms/{room}/leave", chat.leave)
    app.router.add_post("/rooms/{room}/messages", chat.message)
    app.router.add_get("/rooms/{room}", chat.show)
    app.router.add_get("/rooms/{room}/ws", chat.ws)

    async def start(app: web.Application) -> None:
        await chat.engine.attach()          # wh_fd on this loop: no polling task

    async def stop(app: web.Application) -> None:
        await chat.engine.aflush(10000)     # deliver what is queued
        chat.engine.close()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--webhook", required=True, help="endpoint URL receiving the events")
    ap.add_argument("--secret", help="Standard Webhooks secret (whsec_...)")
    ap.add_argument("--selftest", type=int, metavar="N", help="exchange N messages, print counts, exit")
    args = ap.parse_args()

    engine = libwebhook.Engine()
    engine.add_endpoint(args.webhook, secret=args.secret,
                        max_in_flight=16)
    chat = Chat(engine)
    engine.on_outcome = lambda o: chat.outcomes.__setitem__(o.kind, chat.outcomes[o.kind] + 1)
    app = make_app(chat)
    if not args.selftest:
        web.run_app(app, host="127.0.0.1", port=args.port)
        return 0

    async def selftest() -> int:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        async with ClientSession() as s:
            for u in ("ann", "bob"):
                await (await s.post(f"{base}/rooms/lobby/join", json={"user": u})).read()
            for i in range(args.selftest):
                r = await s.post(f"{base}/rooms/lobby/messages",
                                 json={"user": ("ann", "bob")[i % 2], "text": f"hello {i}"})
                assert r.status == 201, r.status
            await (await s.post(f"{base}/rooms/lobby/leave", json={"user": "bob"})).read()
        drained = await engine.aflush(20000)
        print(json.dumps({"drained": drained, "events": args.selftest + 3, **chat.outcomes}))
        await runner.cleanup()
        return 0
    return asyncio.run(selftest())


if __name__ == "__main__":
    sys.exit(main())
