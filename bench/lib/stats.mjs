// Order statistics for repeated timings: the median resists the outliers a noisy, shared
// machine produces far better than the mean.

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

/** Relative spread (max - min) / median, reported so a noisy figure is visible as such. */
export function spread(values) {
  const m = median(values);
  return m > 0 ? (Math.max(...values) - Math.min(...values)) / m : NaN;
}
