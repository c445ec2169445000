// Typed errors for user mistakes. Every message starts with the op's name and quotes the
// offending shapes or values, so a failure points at the call that caused it.

/** Base class of every error nabla throws on bad input. */
export class NablaError extends Error {
  override name = 'NablaError';
}

/** Shapes that do not fit the op (broadcasting, matmul alignment, reshape sizes, dims). */
export class ShapeError extends NablaError {
  override name = 'ShapeError';
}

/** A dtype the op does not accept (a float index, an integer tensor that needs a gradient). */
export class DTypeError extends NablaError {
  override name = 'DTypeError';
}

/** An index value outside the valid range. */
export class IndexError extends NablaError {
  override name = 'IndexError';
}

/** A tensor used after `dispose()` (directly, or by a scope that ended). */
export class DisposedError extends NablaError {
  override name = 'DisposedError';
}

/** Anything else the caller got wrong (a bad option, a call before `init()`). */
export class ValueError extends NablaError {
  override name = 'ValueError';
}

/** Formats a shape the way messages quote it: `[2, 3]`. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
