/**
 * The catalog: a Glue database with one table per generated TableInput (with the real
 * bucket and prefix put in), an Athena workgroup that enforces its configuration and
 * writes KMS-encrypted results to a results bucket that expires them, and named queries.
 */
import { Duration, Fn, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { privateKmsBucket } from './archive-bucket';
import { BUCKET_PLACEHOLDER, GlueTableSpec, PREFIX_PLACEHOLDER } from './glue-tables';
import { NamedQuerySpec } from './queries';

/** Settings of the catalog. */
export interface CatalogProps {
  /** Glue database name. */
  readonly databaseName: string;
  /** The tables to create. */
  readonly tables: readonly GlueTableSpec[];
  /** The archive bucket. */
  readonly bucket: s3.IBucket;
  /** Key prefix inside the bucket. */
  readonly prefix: string;
  /** Key for the Athena results. */
  readonly key: kms.IKey;
  /** Bucket for the results bucket's access logs. */
  readonly accessLogs: s3.IBucket;
  /** Days after which query results are deleted. */
  readonly resultsExpiryDays: number;
  /** Named queries to save in the workgroup. */
  readonly queries: readonly NamedQuerySpec[];
}

/**
 * Puts the real bucket and prefix into every string of a generated TableInput. A string
 * naming the bucket becomes `Fn::Sub` with the bucket name as a variable, and any literal
 * `${…}` in it (such as `storage.location.template`'s `${year}`) is escaped as `${!…}` so
 * CloudFormation passes it through unchanged.
 */
export function renderTableInput(value: unknown, bucketName: string, prefix: string): unknown {
  if (typeof value === 'string') {
    const s = value.split(PREFIX_PLACEHOLDER).join(prefix);
    if (!s.includes(BUCKET_PLACEHOLDER) && !s.includes('${')) return s;
    const template = s.replace(/\$\{/g, '${!').split(BUCKET_PLACEHOLDER).join('${ArchiveBucket}');
    return s.includes(BUCKET_PLACEHOLDER) ? Fn.sub(template, { ArchiveBucket: bucketName }) : Fn.sub(template);
  }
  if (Array.isArray(value)) return value.map((v) => renderTableInput(v, bucketName, prefix));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderTableInput(v, bucketName, prefix)]));
  }
  return value;
}

/** The Glue database and tables, the Athena workgroup, its results bucket and named queries. */
export class Catalog extends Construct {
  /** The Glue database. */
  public readonly database: glue.CfnDatabase;
  /** The Glue tables, by source table name. */
  public readonly tables: Map<string, glue.CfnTable> = new Map();
  /** The Athena workgroup. */
  public readonly workGroup: athena.CfnWorkGroup;
  /** The bucket holding Athena query results. */
  public readonly resultsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: CatalogProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: {
        name: props.databaseName,
        description: 'ddb-archiver: archived DynamoDB changes, partitioned by event day',
      },
    });

    for (const spec of props.tables) {
      const tableInput = renderTableInput(spec.tableInput, props.bucket.bucketName, props.prefix);
      const table = new glue.CfnTable(this, `Table-${spec.sourceTable}`, {
        catalogId: stack.account,
        databaseName: props.databaseName,
        tableInput: tableInput as glue.CfnTable.TableInputProperty,
      });
      table.addResourceDependency(this.database);
      this.tables.set(spec.sourceTable, table);
    }

    this.resultsBucket = new s3.Bucket(this, 'AthenaResults', {
      ...privateKmsBucket(props.key, props.accessLogs, 'athena-results/'),
      lifecycleRules: [
        {
          id: 'expire-query-results',
          expiration: Duration.days(props.resultsExpiryDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });

    this.workGroup = new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: `${stack.stackName}-archive`,
      description: 'ddb-archiver: queries over the change archive (configuration enforced)',
      state: 'ENABLED',
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        engineVersion: { selectedEngineVersion: 'AUTO' },
        resultConfiguration: {
          outputLocation: this.resultsBucket.s3UrlForObject('results/'),
          encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKey: props.key.keyArn },
        },
      },
    });

    for (const q of props.queries) {
      const named = new athena.CfnNamedQuery(this, `Query-${q.id}`, {
        name: q.name,
        description: q.description,
        database: props.databaseName,
        workGroup: this.workGroup.ref,
        queryString: q.sql,
      });
      named.addResourceDependency(this.database);
    }
  }
}
