"""The Cap'n Proto control socket: schemas, framing codec, server and client."""
