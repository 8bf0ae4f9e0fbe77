#!/bin/sh
# Make a private CA and certificates for tests/test_tls.c in directory $1
# (openssl CLI): ca.pem/ca.key, server.pem/server.key (127.0.0.1,
# localhost), client.pem/client.key (client auth), other.key (an unrelated
# key), server.pin and other.pin ("sha256//<base64>" of the public keys).
set -e
d=$1
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj "/CN=libwebhook test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
    key $who.key
    openssl req -new -key $who.key -out $who.csr -subj "/CN=$who" 2>/dev/null
    openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem \
        -days 2 -extfile $who.ext 2>/dev/null
done
key other.key
pin() { printf 'sha256//%s' "$(openssl pkey -in "$1" -pubout -outform der 2>/dev/null |
        openssl dgst -sha256 -binary | openssl base64 -A)"; }
pin server.key > server.pin
pin other.key > other.pin
