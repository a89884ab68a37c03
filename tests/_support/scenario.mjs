// Plumbing shared by the Node scenario scripts (tests/interop/*.mjs): arguments, deadlines, binary values.
// No package imports here: each script resolves its own packages from its folder's node_modules.

/** `--name value` options (over `defaults`) and the positional arguments of `argv`. */
export function parseArgs(argv, defaults) {
  const positional = [];
  const opts = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) {
      opts[argv[i].slice(2)] = argv[++i];
    } else {
      positional.push(argv[i]);
    }
  }
  return { positional, opts };
}

/** A promise that rejects after `ms` (saying what was awaited), and its cancel(). */
export function deadline(ms, what) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms waiting for ${what}`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** `promise`, or a rejection after `ms`. */
export async function within(ms, what, promise) {
  const d = deadline(ms, what);
  try {
    return await Promise.race([promise, d.promise]);
  } finally {
    d.cancel();
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

/** A Buffer over any binary value (no copy). */
export function toBuf(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
