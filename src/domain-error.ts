/**
 * An error of the domain (ledger, pricing, …): a stable machine-readable `code`, a sentence for
 * people (`detail`) and facts a client may act on (`data`, e.g. `{required, available}` in credits).
 * It knows nothing of HTTP: src/http/domain-problems.ts maps each code to a problem+json status.
 */
export class DomainError extends Error {
  readonly code: string;
  readonly detail: string;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: string, detail: string, data: Record<string, unknown> = {}) {
    super(detail);
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
    this.data = data;
  }
}
