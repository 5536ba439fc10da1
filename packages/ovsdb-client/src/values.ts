/**
 * Values: what callers write (plain JS) and what goes on the wire (RFC 7047
 * §5.1 notation), converted with the column's schema so that callers never
 * spell `["set", ...]` or `["map", ...]` themselves.
 *
 * | column kind | plain value                          |
 * |-------------|--------------------------------------|
 * | scalar      | atom                                 |
 * | optional    | atom or null                         |
 * | set         | atom[]                               |
 * | map         | Record<string, atom>                 |
 *
 * An atom is a string, number or boolean; a uuid is its string, or a
 * `NamedUuid` to refer to a row inserted in the same transaction.
 */
import { SchemaError } from "./errors.js";
import type { BaseType, ColumnSchema, TableSchema } from "./schema.js";
import type {
  Atom,
  NamedUuidRef,
  Row,
  Value,
  WireAtom,
  WireMap,
  WireNamedUuid,
  WireSet,
  WireUuid,
  WireValue,
} from "./protocol.js";

export class NamedUuid implements NamedUuidRef {
  constructor(readonly name: string) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new SchemaError(`named-uuid ${JSON.stringify(name)} is not an <id> (letters, digits and _)`);
    }
  }
  toJSON(): WireNamedUuid {
    return ["named-uuid", this.name];
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: unknown): s is string {
  return typeof s === "string" && UUID_RE.test(s);
}

/** Typed constructors for wire values, for callers who want to spell them out. */
export const wire = {
  uuid(s: string): WireUuid {
    if (!isUuid(s)) throw new SchemaError(`${JSON.stringify(s)} is not a UUID`);
    return ["uuid", s];
  },
  namedUuid(name: string): WireNamedUuid {
    return new NamedUuid(name).toJSON();
  },
  set(atoms: WireAtom[]): WireSet {
    return ["set", atoms];
  },
  map(entries: Record<string, WireAtom> | Array<[WireAtom, WireAtom]>): WireMap {
    return ["map", Array.isArray(entries) ? entries : Object.entries(entries)];
  },
};

/** Refers to a row inserted earlier in the same transaction under `uuidName`. */
export function namedUuid(name: string): NamedUuid {
  return new NamedUuid(name);
}

function describe(v: unknown): string {
  if (v instanceof NamedUuid) return `named-uuid ${v.name}`;
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function encodeAtom(base: BaseType, v: unknown, table: string, column: string, role = ""): WireAtom {
  const fail = (expected: string): never => {
    throw new SchemaError(`${role}expected ${expected}, found ${describe(v)}`, table, column);
  };
  switch (base.type) {
    case "integer":
      if (typeof v !== "number" || !Number.isInteger(v)) fail("an integer");
      if (base.minInteger !== undefined && (v as number) < base.minInteger)
        fail(`an integer >= ${base.minInteger}`);
      if (base.maxInteger !== undefined && (v as number) > base.maxInteger)
        fail(`an integer <= ${base.maxInteger}`);
      break;
    case "real":
      if (typeof v !== "number" || !Number.isFinite(v)) fail("a real number");
      if (base.minReal !== undefined && (v as number) < base.minReal) fail(`a real >= ${base.minReal}`);
      if (base.maxReal !== undefined && (v as number) > base.maxReal) fail(`a real <= ${base.maxReal}`);
      break;
    case "boolean":
      if (typeof v !== "boolean") fail("a boolean");
      break;
    case "string":
      if (typeof v !== "string") fail("a string");
      if (base.minLength !== undefined && (v as string).length < base.minLength)
        fail(`a string of at least ${base.minLength} characters`);
      if (base.maxLength !== undefined && (v as string).length > base.maxLength)
        fail(`a string of at most ${base.maxLength} characters`);
      break;
    case "uuid":
      if (v instanceof NamedUuid) return v.toJSON();
      if (!isUuid(v)) fail("a UUID string or a namedUuid()");
      return ["uuid", v as string];
  }
  if (base.enum && !base.enum.includes(v as string | number | boolean)) {
    fail(`one of ${base.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  }
  return v as WireAtom;
}

export interface EncodeOptions {
  /** Skip the set-size checks: conditions and mutations may name fewer or more elements than a row holds. */
  anySize?: boolean;
  /** Encode an array given for a map column as the set of its keys (map `delete` mutations). */
  keysOf?: boolean;
}

/** Encodes a plain value for `column`, checking it against the schema. */
export function encodeValue(
  table: TableSchema,
  column: ColumnSchema,
  value: unknown,
  options: EncodeOptions = {},
): WireValue {
  const t = table.name;
  const c = column.name;
  const sizeCheck = (n: number): void => {
    if (options.anySize) return;
    if (n < column.min || n > column.max) {
      const bound = column.max === Infinity ? `at least ${column.min}` : `${column.min} to ${column.max}`;
      throw new SchemaError(`expected ${bound} elements, found ${n}`, t, c);
    }
  };
  switch (column.kind) {
    case "scalar":
      return encodeAtom(column.key, value, t, c);
    case "optional":
      if (value === null || value === undefined) return ["set", []];
      if (Array.isArray(value)) {
        sizeCheck(value.length);
        return ["set", value.map((v) => encodeAtom(column.key, v, t, c))];
      }
      return encodeAtom(column.key, value, t, c);
    case "set": {
      const atoms = Array.isArray(value) ? value : value === null || value === undefined ? [] : [value];
      if (!options.anySize && !Array.isArray(value)) {
        throw new SchemaError(`expected an array (set column), found ${describe(value)}`, t, c);
      }
      sizeCheck(atoms.length);
      return ["set", atoms.map((v) => encodeAtom(column.key, v, t, c))];
    }
    case "map": {
      if (options.keysOf && Array.isArray(value)) {
        return ["set", value.map((k) => encodeAtom(column.key, k, t, c, "key: "))];
      }
      if (value instanceof Map) value = Object.fromEntries(value);
      if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof NamedUuid) {
        throw new SchemaError(
          `expected an object of key to value (map column), found ${describe(value)}`,
          t,
          c,
        );
      }
      const valueType = column.value as BaseType;
      const pairs = Object.entries(value as Record<string, unknown>).map(([k, v]): [WireAtom, WireAtom] => [
        encodeAtom(column.key, keyFromString(column.key, k), t, c, `key ${JSON.stringify(k)}: `),
        encodeAtom(valueType, v, t, c, `value of key ${JSON.stringify(k)}: `),
      ]);
      sizeCheck(pairs.length);
      return ["map", pairs];
    }
  }
}

function keyFromString(base: BaseType, key: string): unknown {
  if (base.type === "integer" || base.type === "real") return Number(key);
  if (base.type === "boolean") return key === "true";
  return key;
}

/** Decodes one wire atom to its plain form (a uuid becomes its string). */
export function decodeAtom(w: unknown): string | number | boolean {
  if (Array.isArray(w)) {
    if ((w[0] === "uuid" || w[0] === "named-uuid") && typeof w[1] === "string") return w[1];
    throw new SchemaError(`expected an atom, found ${describe(w)}`);
  }
  return w as string | number | boolean;
}

function isTagged(w: unknown, tag: string): w is [string, unknown[]] {
  return Array.isArray(w) && w.length === 2 && w[0] === tag && Array.isArray(w[1]);
}

/** The elements of a wire set (a bare atom is a one-element set). */
export function wireSetElements(w: unknown): unknown[] {
  return isTagged(w, "set") ? w[1] : [w];
}

/** Decodes a wire value to the plain form its column's kind calls for. */
export function decodeValue(column: ColumnSchema | undefined, w: unknown): Value {
  if (!column) return decodeUntyped(w);
  switch (column.kind) {
    case "scalar":
      return decodeAtom(w);
    case "optional": {
      const elements = wireSetElements(w);
      return elements.length === 0 ? null : decodeAtom(elements[0]);
    }
    case "set":
      return wireSetElements(w).map(decodeAtom);
    case "map": {
      const out: Record<string, Atom> = {};
      if (isTagged(w, "map")) {
        for (const pair of w[1] as Array<[unknown, unknown]>)
          out[String(decodeAtom(pair[0]))] = decodeAtom(pair[1]);
      }
      return out;
    }
  }
}

function decodeUntyped(w: unknown): Value {
  if (isTagged(w, "set")) return w[1].map(decodeAtom);
  if (isTagged(w, "map")) {
    const out: Record<string, Atom> = {};
    for (const pair of w[1] as Array<[unknown, unknown]>)
      out[String(decodeAtom(pair[0]))] = decodeAtom(pair[1]);
    return out;
  }
  return decodeAtom(w);
}

const ZERO_UUID = "00000000-0000-0000-0000-000000000000";

/** The value a column holds when a row does not set it (RFC 7047 §5.2.1 defaults). */
export function defaultValue(column: ColumnSchema): Value {
  switch (column.kind) {
    case "optional":
      return null;
    case "set":
      return column.min === 0 ? [] : Array.from({ length: column.min }, () => defaultAtom(column.key));
    case "map":
      return {};
    case "scalar":
      return defaultAtom(column.key);
  }
}

function defaultAtom(base: BaseType): string | number | boolean {
  if (base.enum && base.enum.length > 0) return [...base.enum].sort()[0] as string | number | boolean;
  switch (base.type) {
    case "integer":
    case "real":
      return 0;
    case "boolean":
      return false;
    case "string":
      return "";
    case "uuid":
      return ZERO_UUID;
  }
}

/** Decodes a whole wire row (e.g. a `select` result) with the table's schema. */
export function decodeRow(table: TableSchema | undefined, wireRow: Record<string, unknown>): Row {
  const row: Row = {};
  for (const [name, w] of Object.entries(wireRow)) row[name] = decodeValue(table?.columns.get(name), w);
  return row;
}
