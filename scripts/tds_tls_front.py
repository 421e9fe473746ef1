#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TLS front for the SQL Server stand-in: TDS encryption as SQL Server does it.

The Babelfish build in ../shared/mssql has no OpenSSL (its postgres says "SSL
is not supported by this build", and babelfishpg_tds links no TLS library), so
it cannot encrypt TDS itself. This program listens on a port, speaks TDS
encryption to the client exactly as a SQL Server with "force encryption" does,
and relays the plain TDS packets to Babelfish on loopback:

  1. PRELOGIN: the client's packet goes to Babelfish with its ENCRYPTION
     option set to NOT_SUP (Babelfish answers NOT_SUP and expects a plain
     login); the answer comes back to the client with ENCRYPTION = REQ
     (encryption required: the whole session is encrypted).
  2. The TLS handshake, its records carried in TDS PRELOGIN packets
     (MS-TDS 2.2.6.5): this side is the TLS server, with the certificate
     and key given; TLS 1.2 at most, as SQL Server with TDS 7.x.
  3. Everything after: TLS records straight on TCP from and to the client,
     plain TDS packets to and from Babelfish.

A client that does not encrypt (FreeTDS "encryption = off" announces NOT_SUP)
gets ENCRYPT_REQ and cannot log in, as with SQL Server.

  tds_tls_front.py LISTEN_PORT BACKEND_PORT CERT KEY
Prints "listening" on stdout once it accepts connections; runs until killed.
"""
import selectors
import socket
import ssl
import struct
import sys
import threading

PRELOGIN = 0x12
ENCRYPTION = 0x01
ENCRYPT_NOT_SUP, ENCRYPT_REQ = 2, 3
MAX_PACKET = 4096


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_packet(sock):
    """One TDS packet: (header, payload)."""
    header = recv_exact(sock, 8)
    length = struct.unpack(">H", header[2:4])[0]
    if length < 8:
        raise EOFError
    return header, recv_exact(sock, length - 8)


def send_packets(sock, ptype, data):
    """data in TDS packets of type ptype, the last one flagged end of message."""
    chunks = [data[i:i + MAX_PACKET - 8] for i in range(0, len(data), MAX_PACKET - 8)] or [b""]
    for n, chunk in enumerate(chunks):
        status = 0x01 if n == len(chunks) - 1 else 0x00
        sock.sendall(struct.pack(">BBHHBB", ptype, status, len(chunk) + 8, 0, (n + 1) & 0xFF, 0)
                     + chunk)


def set_encryption(payload, value):
    """payload (a PRELOGIN message) with its ENCRYPTION option set to value,
    and the value it held (None if absent)."""
    data = bytearray(payload)
    i = 0
    while i < len(data) and data[i] != 0xFF:
        token, offset, length = data[i], *struct.unpack(">HH", data[i + 1:i + 5])
        if token == ENCRYPTION and length >= 1 and offset < len(data):
            old = data[offset]
            data[offset] = value
            return bytes(data), old
        i += 5
    return bytes(data), None


def serve(client, backend_port, ctx):
    backend = None
    try:
        # 1. PRELOGIN, relayed with the encryption option rewritten
        header, payload = read_packet(client)
        if header[0] != PRELOGIN:
            return
        backend = socket.create_connection(("127.0.0.1", backend_port))
        to_backend, announced = set_encryption(payload, ENCRYPT_NOT_SUP)
        send_packets(backend, PRELOGIN, to_backend)
        bheader, answer = read_packet(backend)
        to_client, _ = set_encryption(answer, ENCRYPT_REQ)
        send_packets(client, bheader[0], to_client)
        if announced == ENCRYPT_NOT_SUP:
            return  # the client cannot encrypt: no session

        # 2. the handshake inside PRELOGIN packets
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            _, payload = read_packet(client)
            incoming.write(payload)
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            pending = outgoing.read()
            if pending:
                send_packets(client, PRELOGIN, pending)
            if done:
                break

        # 3. TLS records on TCP to the client, plain TDS to Babelfish
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, "client")
        sel.register(backend, selectors.EVENT_READ, "backend")
        while True:
            for key, _ in sel.select():
                data = key.fileobj.recv(65536)
                if not data:
                    return
                if key.data == "client":
                    incoming.write(data)
                    while True:
                        try:
                            plain = tls.read(65536)
                        except ssl.SSLWantReadError:
                            break
                        except ssl.SSLZeroReturnError:
                            return
                        if not plain:
                            return
                        backend.sendall(plain)
                else:
                    tls.write(data)
                    client.sendall(outgoing.read())
    except (EOFError, OSError, ssl.SSLError):
        pass
    finally:
        client.close()
        if backend:
            backend.close()


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: tds_tls_front.py LISTEN_PORT BACKEND_PORT CERT KEY")
    port, backend_port, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    print("listening", flush=True)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=serve, args=(client, backend_port, ctx), daemon=True).start()


if __name__ == "__main__":
    main()
