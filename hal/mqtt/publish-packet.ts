/**
 * A frame's MQTT PUBLISH packet, built in one buffer (MQTT 3.1.1, section 3.3): QoS 0,
 * no retain, no dup, so no packet identifier.
 *
 *   0x30 | remaining length (1-4 bytes, 7 bits each, low group first) | topic length
 *   (uint16, big-endian) | topic (UTF-8) | payload
 *
 * Why not mqtt.js's `publish()`: it writes a packet as five writes into a corked stream,
 * so every frame went through the stream machinery five times. In a profile of an idle
 * follower, mqtt.js's stream paths (this one and the receive side) were the largest part
 * of its JavaScript time. One buffer is one write; the link corks the stream for the rest
 * of the tick, so the frames of one turn still leave in one system call.
 */

/** Largest remaining length MQTT can express (four 7-bit groups). */
export const MQTT_MAX_REMAINING = 268_435_455;

/** The PUBLISH packet carrying `payload` on `topic` (the topic's UTF-8 bytes). */
export function encodePublishQos0(topic: Uint8Array, payload: Uint8Array): Buffer {
  if (topic.length > 0xffff) throw new RangeError(`encodePublishQos0: topic of ${topic.length} bytes; MQTT allows at most 65535`);
  const remaining = 2 + topic.length + payload.length;
  if (remaining > MQTT_MAX_REMAINING) throw new RangeError(`encodePublishQos0: packet of ${remaining} bytes after its header; MQTT allows at most ${MQTT_MAX_REMAINING}`);
  const lenBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x200000 ? 3 : 4;
  const buf = Buffer.allocUnsafe(1 + lenBytes + remaining);
  buf[0] = 0x30;
  let i = 1;
  let x = remaining;
  do {
    const low = x & 0x7f;
    x >>>= 7;
    buf[i++] = x > 0 ? low | 0x80 : low;
  } while (x > 0);
  buf[i++] = topic.length >>> 8;
  buf[i++] = topic.length & 0xff;
  buf.set(topic, i);
  buf.set(payload, i + topic.length);
  return buf;
}
