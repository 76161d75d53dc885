#!/usr/bin/env bash
# Makes the tests' TLS material: a CA, a server certificate for localhost
# and 127.0.0.1, and two client certificates, valid for a century. Test
# keys only: nothing here protects anything. Run from this folder.
set -euo pipefail
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=Verdad test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
issue() {
    local name=$1 subject=$2 extensions=$3
    openssl ecparam -name prime256v1 -genkey -noout -out "$name.key.sec1"
    openssl pkcs8 -topk8 -nocrypt -in "$name.key.sec1" -out "$name.key"
    rm "$name.key.sec1"
    openssl req -new -key "$name.key" -subj "/CN=$subject" -out "$name.csr"
    printf '%s\n' "$extensions" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 \
        -days $days -extfile "$name.ext" -out "$name.pem"
    rm "$name.csr" "$name.ext"
}
issue server localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
issue engine "integration-engine" "$client_ext"
issue intruder "intruder" "$client_ext"
rm -f ca.srl
