#pragma once
// Paho C 1.3.11/12 never sets TCP_NODELAY on its socket, which costs ~40 ms per QoS 1 round trip
// (Nagle's algorithm meets delayed ACKs; paho.mqtt.c issue #530), and it does not expose the
// socket. mqttspecd interposes connect() in its own executable (server/external/tcp_nodelay.cc);
// a library cannot do that to the programs that link it. So after each connect the client SDK
// finds its broker connection among the process's sockets (/proc/self/fd: stream sockets whose
// peer port is the broker's) and sets TCP_NODELAY on them — harmless on any other connection to
// that port, which wants it as much.

#include <string>

namespace mqttspec::client {

// The port of a Paho server URI (tcp://h:p, ssl://, ws://, wss://, mqtt://, mqtts://); the
// scheme's default when none is given.
int PortOfUri(const std::string& uri);

// Sets TCP_NODELAY on every TCP socket of this process connected to `port`. Returns how many.
int SetNoDelayOnPeerPort(int port);

}  // namespace mqttspec::client
