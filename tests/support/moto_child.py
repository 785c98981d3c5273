"""Runs moto server on loopback for one test process, and stops when that process exits.

The parent keeps our stdin open; when it exits (however it exits), stdin reaches EOF and
we shut the server down, so no emulator outlives the tests.
"""
import sys

from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
