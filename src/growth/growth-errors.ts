import { AppError } from '../http/errors.ts';

/**
 * 410 Gone: a promo code that exists but can no longer be used (expired, not yet valid, or all its
 * redemptions taken), or a gift code that has been returned. RFC 9110 §15.5.11.
 */
export class GoneError extends AppError {
  constructor(detail: string, code = 'gone') {
    super(410, code, 'Gone', detail);
  }
}
