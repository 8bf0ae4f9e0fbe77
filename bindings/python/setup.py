"""Build the libwebhook Python package (the CPython extension libwebhook._native).

Two ways to find the C library:
  * a checkout where `make` ran: the static library of WEBHOOK_BUILD
    (default: ../../build) is linked in, so the package needs no libwebhook.so
    at run time; its dependencies come from that build's libwebhook.pc;
  * an installed libwebhook (`make install`): pkg-config libwebhook, linked
    against libwebhook.so.

    python3 -m venv --system-site-packages venv
    venv/bin/pip install --no-build-isolation bindings/python
"""
import os
import re
import shlex
import subprocess

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
build = os.path.abspath(os.environ.get("WEBHOOK_BUILD", os.path.join(root, "build")))


def pkg_config(*args):
    return shlex.split(subprocess.check_output(["pkg-config", *args], text=True))


static = os.path.join(build, "libwebhook.a")
if os.path.exists(static) and os.path.exists(os.path.join(build, "libwebhook.pc")):
    pc = open(os.path.join(build, "libwebhook.pc")).read()
    requires = re.search(r"^Requires\.private:(.*)$", pc, re.M)
    private = re.search(r"^Libs\.private:(.*)$", pc, re.M)
    link = pkg_config("--libs", *requires.group(1).split()) if requires else []
    link += shlex.split(private.group(1)) if private else []
    ext = Extension("libwebhook._native", ["src/_native.c"],
                    include_dirs=[os.path.join(root, "include")],
                    extra_objects=[static],
                    extra_compile_args=["-std=c11"],
                    extra_link_args=link + ["-lm", "-Wl,--exclude-libs,ALL"])
else:
    cflags = pkg_config("--cflags", "libwebhook")
    ext = Extension("libwebhook._native", ["src/_native.c"],
                    extra_compile_args=["-std=c11"] + cflags,
                    extra_link_args=pkg_config("--libs", "libwebhook"))

setup(
    name="libwebhook",
    version="0.1.0",
    description="Signed, retried webhook delivery (libwebhook) with asyncio integration",
    packages=["libwebhook"],
    package_data={"libwebhook": ["py.typed", "_native.pyi"]},
    ext_modules=[ext],
    python_requires=">=3.8",
)
