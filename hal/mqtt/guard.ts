/**
 * A size guard on an MQTT byte stream: reads the fixed header of every packet
 * (MQTT 3.1.1 §2.2: one type byte, then the remaining length in 1–4 bytes of 7 bits)
 * and calls `tooLarge` as soon as a packet announces more than `max` bytes — before
 * its body arrives. Without it, the MQTT parsers (mqtt-packet, in aedes and mqtt.js)
 * buffer a packet whole: one 200 MB PUBLISH grew a broker by 380 MB and a node by
 * 190 MB before anything looked at it.
 *
 * It only counts: bodies are skipped by length, never copied. Used by the embedded
 * broker on every client connection and by the MQTT link on its broker connection.
 */
export class MqttSizeGuard {
  private skip = 0;
  private inLength = false;
  private len = 0;
  private mul = 1;
  private lenBytes = 0;
  private tripped = false;

  constructor(
    private readonly max: number,
    private readonly tooLarge: (announced: number) => void,
  ) {}

  feed(buf: Uint8Array): void {
    if (this.tripped) return;
    let i = 0;
    while (i < buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      if (!this.inLength) {
        this.inLength = true; // the type byte
        this.len = 0;
        this.mul = 1;
        this.lenBytes = 0;
        i++;
        continue;
      }
      const b = buf[i++]!;
      this.len += (b & 0x7f) * this.mul;
      this.mul *= 128;
      this.lenBytes++;
      if (b & 0x80) {
        if (this.lenBytes >= 4) return this.trip(Infinity); // a fifth length byte: malformed
        continue;
      }
      this.inLength = false;
      if (this.len > this.max) return this.trip(this.len);
      this.skip = this.len;
    }
  }

  private trip(n: number): void {
    this.tripped = true;
    this.tooLarge(n);
  }
}
