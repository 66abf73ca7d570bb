// Stands in for the `ws` and `socks` packages in dist/ (scripts/build.mjs, `alias`).
// The mqtt package reaches them only from its own connect() for ws://, wss:// and SOCKS
// proxies; quorumd's MQTT link opens its TCP/TLS sockets itself and accepts only
// mqtt:// and mqtts:// brokers, so they are never loaded. Leaving them out saves every
// node process reading and compiling ~160 KiB of JavaScript at start-up.
throw new Error('quorumd: WebSocket and SOCKS transports of the MQTT client are not part of this build (brokers are mqtt:// or mqtts://)');
