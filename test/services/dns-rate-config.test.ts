/**
 * services.dns.udpRate: the per-source UDP rate limit of the DNS interface is a config
 * key (defaults unchanged: 50 a second, bursts of 100, 4,096 sources), refused with the
 * key, the line and the range when it is wrong, and what a node runs with.
 */
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../daemon/config/load.ts';
import { startServices } from '../../daemon/services/index.ts';
import { good, problems } from '../daemon/config/helpers.ts';
import { freePort } from '../helpers/ports.ts';
import { StillKv } from './still-kv.ts';
import { udpAsk } from './udp-ask.ts';

const log = { debug: () => undefined, info: () => undefined, warn: () => undefined };

describe('services.dns.udpRate', () => {
  it('defaults to 50 a second, bursts of 100, 4096 sources; each key is checked and named', () => {
    expect(parseConfigText(good + 'services:\n  dns: {}\n').services.dns!.udpRate).toEqual({ perSec: 50, burst: 100, sources: 4096 });
    expect(parseConfigText(good + 'services:\n  dns:\n    udpRate: { burst: 10 }\n').services.dns!.udpRate).toEqual({ perSec: 50, burst: 10, sources: 4096 });
    const bad = (yaml: string, key: string, re: RegExp) => {
      const p = problems(good + 'services:\n  dns:\n    udpRate:\n' + yaml);
      const hit = p.find((x) => x.key === key);
      expect(hit, JSON.stringify(p)).toBeDefined();
      expect(hit!.line).toBe(16);
      expect(hit!.message).toMatch(re);
    };
    bad('      perSec: 0\n', 'services.dns.udpRate.perSec', /expected answers a second: an integer 1\.\.100000/);
    bad('      perSec: 2.5\n', 'services.dns.udpRate.perSec', /an integer 1\.\.100000/);
    bad('      burst: many\n', 'services.dns.udpRate.burst', /expected answers: an integer 1\.\.100000/);
    bad('      sources: 100000\n', 'services.dns.udpRate.sources', /expected addresses: an integer 1\.\.65536/);
    bad('      perSecond: 5\n', 'services.dns.udpRate.perSecond', /unknown key/);
  });

  it('a node runs its DNS interface with the configured rate: past the burst, TC-only slips', async () => {
    const port = await freePort();
    const config = parseConfigText(good + `services:\n  dns:\n    listen: "127.0.0.1:${port}"\n    udpRate: { perSec: 1, burst: 3 }\n`).services;
    const s = await startServices(new StillKv(), { self: 'a', cluster: 'home', config, log });
    try {
      const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'service.home.quorumd', type: 'SRV' }] });
      const tc: boolean[] = [];
      // 8 queries at once: 3 from the burst, at most a few more from the refill (one a second) however slow the machine.
      const t0 = performance.now();
      for (let i = 0; i < 8; i++) {
        const r = await udpAsk(port, q, 5000);
        expect(r, `answer ${i}`).toBeDefined();
        tc.push((dnsPacket.decode(r!).flags! & (1 << 9)) !== 0);
      }
      const seconds = (performance.now() - t0) / 1000;
      const full = tc.filter((x) => !x).length;
      expect(full, `full answers: ${tc.map((x) => (x ? 'slip' : 'full')).join(' ')} in ${seconds.toFixed(1)} s`).toBeGreaterThanOrEqual(3);
      expect(full).toBeLessThanOrEqual(3 + Math.ceil(seconds));
      expect(s.dns!.stats.slipped).toBe(8 - full);
      expect(s.dns!.stats.slipped).toBeGreaterThan(0);
    } finally {
      await s.stop();
    }
  });
});
