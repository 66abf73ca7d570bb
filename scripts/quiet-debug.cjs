// Stands in for the `debug` package in dist/ (scripts/build.mjs, `alias`). mqtt.js and
// mqtt-packet log through it several times per MQTT packet (client, parser, writer), and
// debug's logging function takes its arguments as a rest parameter: every call builds
// an array even when its namespace is off. Under 64 writers that was 7.6 % of the bytes a
// leader allocated (V8 sampling heap profile), garbage the collector then had to reap, on
// every node and in the broker. Here a logger whose namespace is off is a function that
// takes no arguments and does nothing.
//
// With DEBUG set when the process starts, the real package is loaded at run time instead
// (resolved from dist/ by Node, as any dependency) and behaves as usual, e.g.
// DEBUG=mqttjs* quorumd start ...; enabling namespaces later from code is not supported.
'use strict';

function noop() {}

function quiet(namespace) {
  const d = function debug() {};
  d.namespace = namespace;
  d.enabled = false;
  d.useColors = false;
  d.color = 0;
  d.diff = 0;
  d.log = noop;
  d.destroy = noop;
  d.extend = (sub, delimiter) => quiet(`${namespace}${delimiter === undefined ? ':' : delimiter}${sub}`);
  return d;
}
quiet.debug = quiet;
quiet.default = quiet;
quiet.coerce = (v) => (v instanceof Error ? v.stack || v.message : v);
quiet.enable = noop;
quiet.disable = () => '';
quiet.enabled = () => false;
quiet.destroy = noop;
quiet.names = [];
quiet.skips = [];
quiet.formatters = {};
quiet.humanize = (ms) => `${ms}ms`;

function real() {
  try {
    // A computed name: the bundler leaves it to Node's require at run time (the literal
    // name would be aliased back to this file).
    return require(['de', 'bug'].join(''));
  } catch (err) {
    process.stderr.write(`quorumd: DEBUG is set but the debug package could not be loaded (${err.message}); library debug output is off\n`);
    return undefined;
  }
}

module.exports = (process.env.DEBUG && real()) || quiet;
