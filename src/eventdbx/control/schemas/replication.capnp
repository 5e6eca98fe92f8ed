@0xdf2749081f1a2e2f;
# The reference replication handshake; this server only uses it to refuse (control-socket.md §2).

struct ReplicationHello {
  protocolVersion @0 :UInt16;
  expectedPublicKey @1 :Data;
}

struct ReplicationHelloResponse {
  accepted @0 :Bool;
  message @1 :Text;
}
