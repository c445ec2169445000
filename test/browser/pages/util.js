// Small helpers shared by the page-side checks.

/** nabla's browser build, initialised. */
export async function nabla() {
  const nb = await import('/dist/browser.js');
  // The plain build on every engine: the training checks compare with Node bit for bit.
  await nb.init({ simd: 'plain' });
  return nb;
}

/** Base64 of bytes (an ArrayBuffer or a view), to hand binary results back to the test. */
export function base64(bytes) {
  const u8 = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000)
    s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The error a promise rejects with ({ name, message, ...own fields }), or null. */
export async function rejection(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { name: e?.name, message: e?.message, remoteName: e?.remoteName };
  }
}
