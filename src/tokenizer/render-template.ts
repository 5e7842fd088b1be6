/**
 * Renders a chat template as transformers' Jinja environment does, on @huggingface/jinja's parser and
 * interpreter, with the Python behaviour that library lacks:
 * - strftime_now formats a given clock as Python does (C-locale month names; the library's own reads
 *   the machine's locale and the real clock, so Granite's and SmolLM3's system headers could not be
 *   reproduced or pinned);
 * - `x | string` of a dict, list or boolean is Python's str(x) (SmolLM3 writes `tool | string` for
 *   each xml_tools entry: `{'type': 'function', ...}`), where the library gives JSON or fails.
 */
import { Environment, Interpreter, type Template } from '@huggingface/jinja';
import { strftime } from './strftime.js';

interface Value {
  type: string;
  value: unknown;
}

/** Python's repr() of a string: single quotes unless the text has ' and no ". */
function reprString(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
  return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
}

/** Python's repr() of a runtime value (inside containers). */
function repr(v: Value): string {
  switch (v.type) {
    case 'StringValue':
      return reprString(v.value as string);
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
    case 'UndefinedValue':
      return 'None';
    case 'ArrayValue':
      return `[${(v.value as Value[]).map(repr).join(', ')}]`;
    case 'TupleValue': {
      const items = (v.value as Value[]).map(repr);
      return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
    }
    case 'ObjectValue':
      return `{${[...(v.value as Map<string, Value>)].map(([k, x]) => `${reprString(k)}: ${repr(x)}`).join(', ')}}`;
    default:
      return String(v.value);
  }
}

const PYTHON_STR = new Set(['ObjectValue', 'ArrayValue', 'TupleValue', 'BooleanValue', 'NullValue']);
const StringValue = (new Environment().set('s', '') as object).constructor as new (s: string) => Value;

type ApplyFilter = (operand: Value, filterNode: { type: string; value?: unknown }, environment: Environment) => Value;

/** An interpreter whose `| string` is Python's str() for containers and booleans. */
function pythonInterpreter(env: Environment): Interpreter {
  const interpreter = new Interpreter(env);
  const self = interpreter as unknown as { applyFilter: ApplyFilter };
  const applyFilter = self.applyFilter.bind(interpreter);
  self.applyFilter = (operand, filterNode, environment) =>
    filterNode.type === 'Identifier' && filterNode.value === 'string' && PYTHON_STR.has(operand.type)
      ? new StringValue(repr(operand))
      : applyFilter(operand, filterNode, environment);
  return interpreter;
}

/** Python's range(), one of @huggingface/jinja's globals. */
function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/** Template.render with the library's globals (strftime_now reading `now`) and the variables given. */
export function renderTemplate(template: Template, vars: Record<string, unknown>, now: Date): string {
  const env = new Environment();
  const globals = {
    false: false, true: true, none: null, False: false, True: true, None: null, range,
    raise_exception: (message: string) => {
      throw new Error(message);
    },
    strftime_now: (format: string) => strftime(now, format),
  };
  for (const [k, v] of Object.entries({ ...globals, ...vars })) env.set(k, v);
  return pythonInterpreter(env).run(template.parsed).value as string;
}
