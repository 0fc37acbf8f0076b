#!/usr/bin/env python3
"""A stand-in for systemd's notify socket: binds an AF_UNIX datagram socket at
argv[1] (a path, or @name for an abstract socket), prints "bound", then prints
each datagram received as one JSON string per line, with the sender's PID."""
import json
import socket
import struct
import sys

address = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind("\0" + address[1:] if address.startswith("@") else address)
# Ask for the sender's credentials, as systemd does, to check NotifyAccess=main would accept them.
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"bound": address}), flush=True)
creds_size = struct.calcsize("3i")
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(creds_size))
    pid = None
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", value[:creds_size])[0]
    print(json.dumps({"pid": pid, "message": data.decode()}), flush=True)
