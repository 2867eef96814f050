import { invalidRequest } from './stripe-errors.ts';

/**
 * Stripe's request encoding: `application/x-www-form-urlencoded` with nested brackets, both in
 * bodies and in query strings (https://docs.stripe.com/api/expanding_objects,
 * https://docs.stripe.com/api/metadata). `line_items[0][price_data][unit_amount]=500` nests
 * objects; `expand[]=a&expand[]=b` appends to an array; `expand[0]=a` is an object keyed `0`
 * that schemas read as an array (indexed form is what stripe-node sends).
 */

export type FormValue = string | FormHash | FormValue[];
export interface FormHash {
  [key: string]: FormValue;
}

/** Splits `a[b][0][]` into `['a', 'b', '0', '']`; a malformed key is kept whole. */
function keySegments(key: string): string[] {
  const open = key.indexOf('[');
  if (open <= 0) return [key];
  const segments = [key.slice(0, open)];
  let rest = key.slice(open);
  while (rest.length > 0) {
    const m = /^\[([^[\]]*)\]/.exec(rest);
    if (!m) return [key];
    segments.push(m[1]!);
    rest = rest.slice(m[0].length);
  }
  return segments;
}

function newHash(): FormHash {
  return Object.create(null) as FormHash;
}

function conflict(key: string): Error {
  return invalidRequest(`Invalid request: the parameter ${key} is given both as a value and as a nested object or array.`, {
    param: key,
  });
}

/**
 * Parses a form-encoded string into nested hashes/arrays (objects have a null prototype, so keys
 * such as `__proto__` are plain data). A later duplicate scalar wins, as in Rack.
 * @throws StripeApiError 400 when a key is used both as a scalar and as a container.
 */
export function parseStripeForm(text: string): FormHash {
  const root = newHash();
  for (const [key, value] of new URLSearchParams(text)) {
    const segments = keySegments(key);
    let node: FormHash | FormValue[] = root;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const last = i === segments.length - 1;
      const nextIsPush = !last && segments[i + 1] === '';
      if (Array.isArray(node)) {
        if (seg !== '') throw conflict(key);
        if (last) {
          node.push(value);
        } else {
          const child: FormHash | FormValue[] = nextIsPush ? [] : newHash();
          node.push(child);
          node = child;
        }
        continue;
      }
      if (seg === '') throw conflict(key);
      if (last) {
        const existing: FormValue | undefined = node[seg];
        if (existing !== undefined && typeof existing !== 'string') throw conflict(key);
        node[seg] = value;
        continue;
      }
      let child: FormValue | undefined = node[seg];
      if (child === undefined) {
        child = nextIsPush ? [] : newHash();
        node[seg] = child;
      } else if (typeof child === 'string' || Array.isArray(child) !== nextIsPush) {
        throw conflict(key);
      }
      node = child;
    }
  }
  return root;
}

/** Canonical JSON (sorted keys) of parsed params: two requests with equal params hash equal. */
export function canonicalJson(value: FormValue | undefined): string {
  if (value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}
