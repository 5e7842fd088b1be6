/**
 * Format detection and validation of preference rows before any training starts. Every bad row is
 * reported with its row number and field (all of them, not just the first).
 */
import { DpoError } from '../errors.js';
import type { Row } from './load.js';

export interface DataFormat {
  /** Lists of {role, content} messages (true) or plain strings (false). */
  conversational: boolean;
  /** A prompt column exists (false: the prompt is the shared start of chosen and rejected). */
  explicitPrompt: boolean;
}

export interface RowError {
  row: number;
  field: string;
  reason: string;
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer', 'function', 'ipython']);

export function detectFormat(rows: readonly Row[]): DataFormat {
  const first = rows[0] ?? {};
  const conversational = ['prompt', 'chosen', 'rejected'].some((k) => Array.isArray(first[k]));
  return { conversational, explicitPrompt: 'prompt' in first };
}

function checkMessages(v: unknown, row: number, field: string, errors: RowError[]): boolean {
  if (!Array.isArray(v)) {
    errors.push({ row, field, reason: `expected a list of {role, content} messages, got ${typeName(v)}` });
    return false;
  }
  let ok = true;
  v.forEach((m, i) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) {
      errors.push({ row, field: `${field}[${i}]`, reason: `message is ${typeName(m)}, expected {role, content}` });
      ok = false;
      return;
    }
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== 'string') {
      errors.push({ row, field: `${field}[${i}].role`, reason: 'missing or not a string' });
      ok = false;
    } else if (!ROLES.has(msg.role)) {
      errors.push({ row, field: `${field}[${i}].role`, reason: `unknown role "${msg.role}" (expected system, user, assistant or tool)` });
      ok = false;
    }
    if (typeof msg.content !== 'string' && !Array.isArray(msg.content)) {
      errors.push({ row, field: `${field}[${i}].content`, reason: `missing or ${typeName(msg.content)}, expected a string` });
      ok = false;
    }
  });
  return ok;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : v === undefined ? 'missing' : `a ${typeof v}`;
}

/** Checks every row against the detected format; returns all problems found. */
export function validateRows(rows: readonly Row[], format: DataFormat = detectFormat(rows)): RowError[] {
  const errors: RowError[] = [];
  if (!rows.length) return [{ row: 0, field: '-', reason: 'the data set is empty' }];
  const fields = format.explicitPrompt ? ['prompt', 'chosen', 'rejected'] : ['chosen', 'rejected'];
  rows.forEach((r, row) => {
    for (const f of fields) {
      const v = r[f];
      if (v === undefined || v === null) {
        errors.push({ row, field: f, reason: 'missing' });
        continue;
      }
      if (format.conversational) {
        if (!checkMessages(v, row, f, errors)) continue;
        if (f !== 'prompt' && (v as unknown[]).length === 0) errors.push({ row, field: f, reason: 'empty completion (no messages)' });
        if (f !== 'prompt' && format.explicitPrompt && (v as { role?: string }[])[0]?.role !== undefined && (v as { role?: string }[])[0].role !== 'assistant') {
          errors.push({ row, field: f, reason: `role mismatch: the completion starts with role "${(v as { role: string }[])[0].role}", expected "assistant"` });
        }
      } else if (typeof v !== 'string') {
        errors.push({ row, field: f, reason: `expected a string (standard format), got ${typeName(v)}${Array.isArray(v) ? '; mixed standard and conversational rows' : ''}` });
      } else if (f !== 'prompt' && v.length === 0) {
        errors.push({ row, field: f, reason: 'empty completion' });
      }
    }
    if (!format.explicitPrompt && 'prompt' in r) errors.push({ row, field: 'prompt', reason: 'present in this row but not in row 0; give every row a prompt or none' });
    if (format.explicitPrompt && format.conversational && Array.isArray(r.prompt) && (r.prompt as unknown[]).length === 0) {
      errors.push({ row, field: 'prompt', reason: 'empty prompt (no messages)' });
    }
    if (!format.explicitPrompt && r.chosen !== undefined && r.rejected !== undefined && JSON.stringify(r.chosen) === JSON.stringify(r.rejected)) {
      errors.push({ row, field: 'chosen/rejected', reason: 'identical, so no prompt/completion split exists' });
    }
  });
  return errors;
}

/** One-line summary plus the list, as the error a user sees (rows numbered from 0 like datasets). */
export function invalidDataError(where: string, errors: RowError[], total: number): DpoError {
  const rowsBad = new Set(errors.map((e) => e.row)).size;
  const lines = errors.slice(0, 50).map((e) => `  row ${e.row}, ${e.field}: ${e.reason}`);
  if (errors.length > 50) lines.push(`  … and ${errors.length - 50} more`);
  return new DpoError(`${where}: ${rowsBad} of ${total} rows are invalid; fix them or pass --skip_invalid_rows to drop them\n${lines.join('\n')}`);
}

/**
 * Only text models are loaded (a multimodal checkpoint's vision tower is not), so a data set with
 * an image column, or a message with an image part (TRL's vision format: content
 * [{"type": "image"}, ...]), is refused, never silently trained on its text alone.
 */
export function refuseImages(rows: readonly Row[], where: string): void {
  const row = rows.find((r) => r && typeof r === 'object' && ('images' in r || 'image' in r));
  const why = 'but only the text model is trained here (a vision tower is never loaded)';
  if (row) {
    const col = 'images' in row ? 'images' : 'image';
    throw new DpoError(`${where}: column "${col}" holds images, ${why}; remove the column or use text-only pairs`);
  }
  rows.forEach((r, i) => {
    for (const [field, v] of Object.entries(r ?? {})) {
      if (!Array.isArray(v)) continue;
      v.forEach((m: unknown, j) => {
        const parts = (m as { content?: unknown } | null)?.content;
        const k = Array.isArray(parts) ? parts.findIndex((c) => IMAGE_PARTS.has((c as { type?: unknown } | null)?.type as string)) : -1;
        if (k >= 0) throw new DpoError(`${where}: row ${i}, ${field}[${j}].content[${k}] is an ${JSON.stringify((parts as { type: string }[])[k].type)} part, ${why}; use text-only messages`);
      });
    }
  });
}

/** Content-part types that carry pixels (transformers' chat format). */
const IMAGE_PARTS = new Set(['image', 'image_url', 'video']);
