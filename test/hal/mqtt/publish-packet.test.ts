/**
 * hal/mqtt/publish-packet.ts builds the PUBLISH packet of a frame itself (one buffer,
 * one write). Its bytes must be exactly what mqtt-packet (mqtt.js's own encoder) writes
 * for the same QoS 0 publish, across every width of the remaining-length field, and
 * mqtt-packet's parser must read them back as that publish.
 */
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { encodePublishQos0, MQTT_MAX_REMAINING } from '../../../hal/mqtt/publish-packet.ts';

function reference(topic: string, payload: Buffer): Buffer {
  return mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false } as never, { protocolVersion: 4 });
}

function parseOne(bytes: Buffer): { topic: string; payload: Buffer; qos: number; retain: boolean; dup: boolean } {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const got: unknown[] = [];
  parser.on('packet', (p: unknown) => got.push(p));
  parser.on('error', (e: Error) => {
    throw e;
  });
  parser.parse(bytes);
  expect(got).toHaveLength(1);
  return got[0] as never;
}

describe('encodePublishQos0', () => {
  const topic = 'quorumd/dev/n/3/in';
  const head = 2 + Buffer.byteLength(topic);
  // Remaining lengths on both sides of each width of the length field (1, 2, 3, 4 bytes).
  const remainings = [head, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152];
  for (const remaining of remainings) {
    it(`is mqtt-packet's packet byte for byte, remaining length ${remaining}`, () => {
      const payload = Buffer.alloc(remaining - head);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
      const ours = encodePublishQos0(Buffer.from(topic), payload);
      expect(ours.equals(reference(topic, payload))).toBe(true);
      const p = parseOne(ours);
      expect(p.topic).toBe(topic);
      expect(p.qos).toBe(0);
      expect(p.retain).toBe(false);
      expect(p.dup).toBe(false);
      expect(Buffer.from(p.payload).equals(payload)).toBe(true);
    });
  }

  it('takes a view into a larger buffer as the payload (only the view is sent)', () => {
    const big = Buffer.from('xxhello frameyy');
    const view = big.subarray(2, 13);
    const ours = encodePublishQos0(Buffer.from('t/é'), view);
    expect(ours.equals(reference('t/é', Buffer.from('hello frame')))).toBe(true);
  });

  it('refuses what MQTT cannot express, naming the limit', () => {
    expect(() => encodePublishQos0(Buffer.alloc(65_536), Buffer.alloc(0))).toThrow(/topic of 65536 bytes; MQTT allows at most 65535/);
    // A payload view over a fake length: no 256 MiB allocation needed to check the bound.
    const huge = { length: MQTT_MAX_REMAINING } as Uint8Array;
    expect(() => encodePublishQos0(Buffer.from('t'), huge)).toThrow(/MQTT allows at most 268435455/);
  });
});
