/**
 * What is wrong with an object, one field at a time: a rule lists every
 * violation it finds (as Kubernetes' own validation answers with every field
 * error at once), each naming the field, the value found and what was expected.
 */
export interface Violation {
  /** 400: a field does not parse; 403: well-formed, but it would break the network. */
  code: 400 | 403;
  message: string;
}

/** A field that does not parse (400). */
export const malformed = (message: string): Violation => ({ code: 400, message });

/** A well-formed object that would break the network (403). */
export const forbidden = (message: string): Violation => ({ code: 403, message });
