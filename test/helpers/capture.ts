/** An `io` for the CLI's command functions (daemon/client/commands.ts) that keeps what they print. */
export function capture() {
  let out = '';
  let err = '';
  return {
    io: { out: (s: string | Uint8Array) => void (out += typeof s === 'string' ? s : Buffer.from(s).toString()), err: (s: string) => void (err += s) },
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}
