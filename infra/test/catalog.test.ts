/** The catalog: generated Glue tables with bucket and prefix put in, the workgroup, named queries. */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, it } from 'node:test';
import { glueTableName, loadGlueTables, readyQueries, schemaFiles, substitute, tableOfSchemaFile } from '../lib/glue-tables';
import { archiveBucketId, build, Built, FIXTURE_SCHEMAS, only, resourcesOf } from './helpers';

const defaults = build();
const GENERATED = path.join(FIXTURE_SCHEMAS, 'generated');

/** camelCase keys of a generated TableInput as CloudFormation's PascalCase (not inside parameter maps). */
function pascal(value: unknown, inMap = false): unknown {
  if (Array.isArray(value)) return value.map((v) => pascal(v));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [inMap ? k : k[0]!.toUpperCase() + k.slice(1), pascal(v, k === 'parameters')]),
    );
  }
  return value;
}

/** A template value with every `Fn::Sub` of the bucket turned back into the placeholder text. */
function unsub(value: unknown, bucketId: string): unknown {
  if (Array.isArray(value)) return value.map((v) => unsub(v, bucketId));
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if ('Fn::Sub' in o) {
      const sub = o['Fn::Sub'];
      const [text, vars] = Array.isArray(sub) ? (sub as [string, Record<string, unknown>]) : [sub as string, {}];
      assert.deepEqual(vars, Array.isArray(sub) ? { ArchiveBucket: { Ref: bucketId } } : {});
      return text.replace(/\$\{ArchiveBucket\}/g, '__BUCKET__').replace(/\$\{!/g, '${');
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unsub(v, bucketId)]));
  }
  return value;
}

function tables(b: Built): any[] {
  return resourcesOf(b, 'AWS::Glue::Table').map(([, p]) => p);
}

describe('glue tables', () => {
  it('creates each generated TableInput unchanged but for the bucket and prefix', () => {
    const [table] = tables(defaults);
    const generated = JSON.parse(fs.readFileSync(path.join(GENERATED, 'invoices.parquet.glue.json'), 'utf8'));
    const expected = pascal(substitute(generated, '__PREFIX__', 'archive/'));
    assert.deepEqual(unsub(table.TableInput, archiveBucketId(defaults)), expected);
    assert.equal(table.DatabaseName, 'ddb_archive');
    assert.deepEqual(table.CatalogId, { Ref: 'AWS::AccountId' });
  });

  it('has partition keys year, month, day and partition projection on the real location', () => {
    const [table] = tables(defaults);
    assert.deepEqual(table.TableInput.PartitionKeys.map((k: any) => k.Name), ['year', 'month', 'day']);
    const p = table.TableInput.Parameters;
    assert.equal(p['projection.enabled'], 'true');
    for (const k of ['year', 'month', 'day']) assert.ok(p[`projection.${k}.type`], `projection of ${k}`);
    assert.deepEqual(p['storage.location.template'], {
      'Fn::Sub': [
        's3://${ArchiveBucket}/archive/invoices/year=${!year}/month=${!month}/day=${!day}/',
        { ArchiveBucket: { Ref: archiveBucketId(defaults) } },
      ],
    });
  });

  it('leaves no placeholder anywhere in the template', () => {
    for (const b of [defaults, build({ format: 'jsonl.gz', standardTables: 'Audit-Log' })]) {
      const text = JSON.stringify(b.json);
      for (const ph of ['__BUCKET__', '__PREFIX__', '__TABLE__']) assert.ok(!text.includes(ph), `${ph} left in the template`);
    }
  });

  it('uses the generated files of the selected format', () => {
    const [table] = tables(build({ format: 'jsonl.gz' }));
    assert.equal(table.TableInput.StorageDescriptor.SerdeInfo.SerializationLibrary, 'org.openx.data.jsonserde.JsonSerDe');
    assert.equal(tables(defaults)[0].TableInput.StorageDescriptor.SerdeInfo.SerializationLibrary, 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe');
  });

  it('catalogs a source table without a schema file with the standard columns', () => {
    const b = build({ streamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders-Prod/stream/2026-01-01T00:00:00.000' });
    const all = tables(b).map((t) => unsub(t.TableInput, archiveBucketId(b)) as any);
    assert.deepEqual(all.map((t) => t.Name).sort(), ['invoices', 'orders_prod']);
    const orders = all.find((t) => t.Name === 'orders_prod');
    assert.equal(orders.StorageDescriptor.Location, 's3://__BUCKET__/archive/Orders-Prod/');
    assert.equal(orders.Parameters['storage.location.template'], 's3://__BUCKET__/archive/Orders-Prod/year=${year}/month=${month}/day=${day}/');
  });

  it('fails naming the generated file that is missing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'schemas-'));
    fs.writeFileSync(path.join(dir, 'orders.json'), '{}');
    assert.throws(() => loadGlueTables(dir, 'parquet', []), /generated\/orders\.parquet\.glue\.json does not exist/);
    assert.throws(() => loadGlueTables(path.join(dir, 'none'), 'parquet', ['t1x']), /_standard\.parquet\.glue\.json does not exist/);
    fs.mkdirSync(path.join(dir, 'generated'));
    fs.writeFileSync(path.join(dir, 'generated', 'orders.parquet.glue.json'), '{"name":"orders"}');
    assert.throws(() => loadGlueTables(dir, 'parquet', []), /orders\.parquet\.glue\.json: the TableInput has no "partitionKeys"/);
  });

  it('makes Athena identifiers of table names', () => {
    assert.equal(glueTableName('Orders-Prod.v2'), 'orders_prod_v2');
  });
});

describe('athena', () => {
  it('has a workgroup that enforces KMS-encrypted results in the results bucket', () => {
    const wg = only(defaults, 'AWS::Athena::WorkGroup');
    const c = wg.WorkGroupConfiguration;
    assert.equal(c.EnforceWorkGroupConfiguration, true);
    assert.equal(c.PublishCloudWatchMetricsEnabled, true);
    const keyId = defaults.stack.resolve((defaults.stack.archive.key.node.defaultChild as any).logicalId);
    assert.deepEqual(c.ResultConfiguration.EncryptionConfiguration, { EncryptionOption: 'SSE_KMS', KmsKey: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    const resultsId = defaults.stack.resolve((defaults.stack.catalog.resultsBucket.node.defaultChild as any).logicalId);
    assert.deepEqual(c.ResultConfiguration.OutputLocation, { 'Fn::Join': ['', ['s3://', { Ref: resultsId }, '/results/']] });
  });

  it('expires query results, in a private, encrypted, TLS-only bucket', () => {
    const resultsId = defaults.stack.resolve((defaults.stack.catalog.resultsBucket.node.defaultChild as any).logicalId) as string;
    const p = defaults.json.Resources[resultsId]!.Properties;
    assert.equal(p.LifecycleConfiguration.Rules[0].ExpirationInDays, 30);
    assert.equal(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'aws:kms');
    assert.equal(p.PublicAccessBlockConfiguration.RestrictPublicBuckets, true);
    const b = build({ athenaResultsExpiryDays: '7' });
    const id = b.stack.resolve((b.stack.catalog.resultsBucket.node.defaultChild as any).logicalId) as string;
    assert.equal(b.json.Resources[id]!.Properties.LifecycleConfiguration.Rules[0].ExpirationInDays, 7);
  });

  it('saves the item history, changes per day and as-of snapshot queries', () => {
    const qs = resourcesOf(defaults, 'AWS::Athena::NamedQuery').map(([, p]) => p);
    assert.deepEqual(qs.map((q) => q.Name).sort(), [
      'invoices: changes per day',
      'invoices: item history',
      'invoices: snapshot as of a time',
    ]);
    for (const q of qs) {
      assert.equal(q.Database, 'ddb_archive');
      assert.ok(q.QueryString.includes('FROM "ddb_archive"."invoices"'), q.QueryString);
    }
    const snapshot = qs.find((q) => q.Name.includes('snapshot'));
    assert.match(snapshot.QueryString, /row_number\(\) OVER \(PARTITION BY keys ORDER BY approximate_creation_time DESC/);
    assert.match(snapshot.QueryString, /event_name <> 'REMOVE'/);
  });

  it('has a Glue database', () => {
    assert.equal(only(defaults, 'AWS::Glue::Database').DatabaseInput.Name, 'ddb_archive');
    assert.equal(only(build({ databaseName: 'audit' }), 'AWS::Glue::Database').DatabaseInput.Name, 'audit');
  });
});

describe('the repository schemas', () => {
  const REPO_SCHEMAS = path.resolve(__dirname, '..', '..', '..', 'schemas');

  it('ignore the format JSON Schema when listing table schemas', () => {
    assert.deepEqual(schemaFiles(FIXTURE_SCHEMAS).map((f) => path.basename(f)), ['invoices.json']);
  });

  it('give a catalog table per schema file and the ready queries as named queries', { skip: !fs.existsSync(path.join(REPO_SCHEMAS, 'generated')) && 'schemas/generated not in this checkout' }, () => {
    const b = build({ schemasDir: REPO_SCHEMAS });
    const names = tables(b).map((t) => t.TableInput.Name).sort();
    assert.deepEqual(names, schemaFiles(REPO_SCHEMAS).map(tableOfSchemaFile).map(glueTableName).sort());
    const files = readyQueries(REPO_SCHEMAS);
    const saved = resourcesOf(b, 'AWS::Athena::NamedQuery').map(([, p]) => p);
    assert.deepEqual(saved.map((q) => q.QueryString).sort(), files.map(([, sql]) => sql).sort());
    assert.ok(files.length >= 3, 'item history, changes per day, as-of snapshot');
    const text = JSON.stringify(b.json);
    for (const ph of ['__BUCKET__', '__PREFIX__', '__TABLE__']) assert.ok(!text.includes(ph), `${ph} left in the template`);
  });
});
