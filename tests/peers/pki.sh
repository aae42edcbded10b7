#!/usr/bin/env bash
# Makes a throwaway PKI for TLS tests in DIR: a CA (ca.pem), a server certificate for NAME and
# 127.0.0.1 (server.pem, server.key) and a client certificate "needle-test-client" (client.pem,
# client.key). EC P-256 keys, valid one day. Needs the openssl command.
#   usage: pki.sh DIR NAME
set -euo pipefail
dir=$1
name=$2
cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 1 -subj "/CN=needle-test-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$name" > server.ext
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=$name" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
  -extfile server.ext -out server.pem 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl req "${ec[@]}" -keyout client.key -out client.csr -subj "/CN=needle-test-client" \
  2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
  -extfile client.ext -out client.pem 2>/dev/null
chmod 600 ./*.key
echo "pki: ca.pem server.pem/server.key ($name, 127.0.0.1) client.pem/client.key in $dir"
