/**
 * Loads the Glue `TableInput` definitions that `ddb-archiver` generates
 * (`schemas/generated/<table>.<format>.glue.json`, and `_standard.<format>.glue.json` for
 * tables without a schema file), so the catalog has exactly the columns, partition keys and
 * partition projection of the generator, never a second hand-written mapping.
 *
 * The files hold placeholders: `__BUCKET__` (archive bucket), `__PREFIX__` (key prefix) and,
 * in the standard file, `__TABLE__` (source table name). They are replaced in every string.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ArchiveFormat } from './config';

/** A TableInput as read from a generated file (camelCase, as CloudFormation's CDK types). */
export type TableInputJson = Record<string, unknown>;

/** One catalog table to create. */
export interface GlueTableSpec {
  /** The DynamoDB source table whose archive it describes. */
  readonly sourceTable: string;
  /** The generated file it was read from. */
  readonly file: string;
  /** The TableInput with `__TABLE__` replaced; `__BUCKET__` and `__PREFIX__` still in place. */
  readonly tableInput: TableInputJson;
}

/** Placeholder for the archive bucket name. */
export const BUCKET_PLACEHOLDER = '__BUCKET__';
/** Placeholder for the key prefix. */
export const PREFIX_PLACEHOLDER = '__PREFIX__';
/** Placeholder for the source table name in the standard-columns file. */
export const TABLE_PLACEHOLDER = '__TABLE__';

/**
 * Table schema files (`<schemasDir>/*.json`, not the `*.schema.json` JSON Schema of the
 * format), sorted; none when the directory does not exist.
 */
export function schemaFiles(schemasDir: string): string[] {
  if (!fs.existsSync(schemasDir)) return [];
  return fs
    .readdirSync(schemasDir)
    .filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json'))
    .sort()
    .map((f) => path.join(schemasDir, f));
}

/** The source table a schema file describes: its `table` field (else its file name). */
export function tableOfSchemaFile(file: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a readable JSON file: ${(e as Error).message}`);
  }
  const table = (parsed as { table?: unknown } | null)?.table;
  if (table === undefined) return path.basename(file, '.json');
  if (typeof table !== 'string' || table === '') throw new Error(`${file}: "table" is not a table name`);
  return table;
}

/** Ready Athena queries (`<schemasDir>/queries/*.sql`), sorted, as [name, SQL]. */
export function readyQueries(schemasDir: string): [string, string][] {
  const dir = path.join(schemasDir, 'queries');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => [path.basename(f, '.sql'), fs.readFileSync(path.join(dir, f), 'utf8')]);
}

/** A Glue/Athena table name for a DynamoDB table name: lowercase, `_` for other characters. */
export function glueTableName(table: string): string {
  return table.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

/** Replaces every occurrence of `from` by `to` in every string of a JSON value. */
export function substitute(value: unknown, from: string, to: string): unknown {
  if (typeof value === 'string') return value.split(from).join(to);
  if (Array.isArray(value)) return value.map((v) => substitute(v, from, to));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, from, to)]));
  }
  return value;
}

function readTableInput(file: string): TableInputJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a readable JSON file: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`${file}: expected a TableInput object`);
  }
  const input = parsed as TableInputJson;
  for (const key of ['name', 'partitionKeys', 'storageDescriptor', 'parameters']) {
    if (!(key in input)) throw new Error(`${file}: the TableInput has no "${key}"`);
  }
  const keys = (input.partitionKeys as { name?: unknown }[]).map((k) => k.name);
  if (JSON.stringify(keys) !== JSON.stringify(['year', 'month', 'day'])) {
    throw new Error(`${file}: expected partition keys year, month, day, got ${JSON.stringify(keys)}`);
  }
  return input;
}

/**
 * The catalog tables for one format: one per schema file, plus a standard-columns table for
 * each of `standardTables` that has no schema file. Fails naming the missing generated file.
 */
export function loadGlueTables(
  schemasDir: string,
  format: ArchiveFormat,
  standardTables: readonly string[],
): GlueTableSpec[] {
  const generated = path.join(schemasDir, 'generated');
  const specs: GlueTableSpec[] = [];
  const withSchema = new Set<string>();
  for (const schema of schemaFiles(schemasDir)) {
    const table = tableOfSchemaFile(schema);
    withSchema.add(table);
    const file = path.join(generated, `${table}.${format}.glue.json`);
    if (!fs.existsSync(file)) {
      throw new Error(`${file} does not exist: generate the Glue table of ${schema} (ddb-archiver schema)`);
    }
    specs.push({ sourceTable: table, file, tableInput: readTableInput(file) });
  }
  const standard = [...new Set(standardTables)].filter((t) => !withSchema.has(t));
  if (standard.length > 0) {
    const file = path.join(generated, `_standard.${format}.glue.json`);
    if (!fs.existsSync(file)) {
      throw new Error(`${file} does not exist: generate the standard-columns Glue table (ddb-archiver schema)`);
    }
    const template = readTableInput(file);
    for (const table of standard) {
      // The name must be a valid Athena identifier; the locations keep the real table name.
      const input = substitute(template, TABLE_PLACEHOLDER, table) as TableInputJson;
      specs.push({ sourceTable: table, file, tableInput: { ...input, name: glueTableName(table) } });
    }
  }
  const names = specs.map((s) => s.tableInput.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new Error(`two catalog tables would be named ${String(dup)}`);
  return specs;
}
