/**
 * The whole pipeline in one stack: archive bucket → archiver function ← stream source,
 * compacted layer ← maintenance function ← schedules, catalog over the archive,
 * monitoring of all of it, and outputs naming what was made.
 */
import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ArchiveBucket } from './archive-bucket';
import { ArchiverFunction, archiveUrl, functionPackage } from './archiver-function';
import { BaselineWorkflow } from './baseline-workflow';
import { Catalog } from './catalog';
import { CompactedBucket } from './compacted-bucket';
import { ArchiverConfig, tableArnFromStreamArn, tableFromStreamArn } from './config';
import { glueTableName, loadGlueTables, readyQueries, schemaFiles, tableOfSchemaFile } from './glue-tables';
import { Maintenance } from './maintenance';
import { Monitoring } from './monitoring';
import { namedQueries, namedQueriesFromFiles, NamedQuerySpec } from './queries';
import { StreamSource } from './stream-source';

/** Props of the stack: the checked configuration. */
export interface ArchiverStackProps extends StackProps {
  /** The configuration (see `readConfig`). */
  readonly config: ArchiverConfig;
}

/** The ddb-archiver stack. */
export class ArchiverStack extends Stack {
  /** The archive bucket, key and access logs. */
  public readonly archive: ArchiveBucket;
  /** The function. */
  public readonly archiver: ArchiverFunction;
  /** The stream source. */
  public readonly source: StreamSource;
  /** The compacted layer's bucket. */
  public readonly compacted: CompactedBucket;
  /** The maintenance function and its schedules. */
  public readonly maintenance: Maintenance;
  /** The catalog. */
  public readonly catalog: Catalog;
  /** The monitoring. */
  public readonly monitoring: Monitoring;
  /** The baseline workflow, when `baselineWorkflow` is true. */
  public readonly baseline?: BaselineWorkflow;

  constructor(scope: Construct, id: string, props: ArchiverStackProps) {
    super(scope, id, props);
    // Access log delivery through a bucket policy (not ACLs), so every bucket keeps
    // BucketOwnerEnforced object ownership.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    const c = props.config;

    // The source table, when known: the demo table or the one named by the stream ARN.
    const sourceTable =
      c.kinesisStreamArn !== undefined
        ? undefined
        : c.streamArn !== undefined
          ? tableFromStreamArn(c.streamArn)
          : c.demoTableName;
    const schemas = schemaFiles(c.schemasDir);
    const tables = loadGlueTables(c.schemasDir, c.format, [
      ...(sourceTable === undefined ? [] : [sourceTable]),
      ...c.standardTables,
    ]);

    this.archive = new ArchiveBucket(this, 'Archive', {
      retentionYears: c.retentionYears,
      objectLockMode: c.objectLockMode,
      prefix: c.prefix,
      infrequentAccessAfterDays: c.infrequentAccessAfterDays,
      glacierInstantRetrievalAfterDays: c.glacierInstantRetrievalAfterDays,
    });

    // One package, staged once, for every function of the stack.
    const code = functionPackage(c.functionAssetDir, schemas);
    this.archiver = new ArchiverFunction(this, 'Archiver', {
      code,
      bucket: this.archive.bucket,
      key: this.archive.key,
      prefix: c.prefix,
      format: c.format,
      memorySize: c.memorySize,
      timeoutSeconds: c.timeoutSeconds,
      maxFileBytes: c.maxFileBytes,
      maxFileRecords: c.maxFileRecords,
      rustLog: c.rustLog,
    });

    this.source = new StreamSource(this, 'Source', {
      function: this.archiver.function,
      streamArn: c.streamArn,
      kinesisStreamArn: c.kinesisStreamArn,
      kinesisKeyArn: c.kinesisKeyArn,
      demoTableName: c.demoTableName,
      batchSize: c.batchSize,
      batchingWindowSeconds: c.batchingWindowSeconds,
      parallelizationFactor: c.parallelizationFactor,
      retryAttempts: c.retryAttempts,
      maxRecordAgeSeconds: c.maxRecordAgeSeconds,
    });

    this.compacted = new CompactedBucket(this, 'Compacted', {
      key: this.archive.key,
      accessLogs: this.archive.accessLogs,
      infrequentAccessAfterDays: c.infrequentAccessAfterDays,
      glacierInstantRetrievalAfterDays: c.glacierInstantRetrievalAfterDays,
      expiryDays: c.compactedExpiryDays,
    });

    this.maintenance = new Maintenance(this, 'Maintenance', {
      code,
      rawBucket: this.archive.bucket,
      rawPrefix: c.prefix,
      compactedBucket: this.compacted.bucket,
      key: this.archive.key,
      compactSchedule: c.compactSchedule,
      verifySchedule: c.verifySchedule,
      lookbackDays: c.compactLookbackDays,
      settleHours: c.compactSettleHours,
      alarmAfterHours: c.compactAlarmAfterHours,
      maxFileBytes: c.compactMaxFileBytes,
      memorySize: c.maintenanceMemorySize,
      rustLog: c.rustLog,
    });

    if (c.baselineWorkflow) {
      // The exported table: as configured, else the table of the stream, else the demo table.
      const tableArn =
        c.baselineTableArn ??
        (c.streamArn !== undefined ? tableArnFromStreamArn(c.streamArn) : this.source.demoTable?.tableArn);
      if (tableArn === undefined) throw new Error('baselineWorkflow: no table to export; set baselineTableArn');
      this.baseline = new BaselineWorkflow(this, 'Baseline', {
        code,
        tableArn,
        rawBucket: this.archive.bucket,
        rawPrefix: c.prefix,
        compactedBucket: this.compacted.bucket,
        key: this.archive.key,
        accessLogs: this.archive.accessLogs,
        format: c.format,
        maxConcurrency: c.baselineMaxConcurrency,
        filesPerBatch: c.baselineFilesPerBatch,
        pollSeconds: c.baselinePollSeconds,
        exportExpiryDays: c.baselineExportExpiryDays,
        memorySize: c.maintenanceMemorySize,
        rustLog: c.rustLog,
      });
    }

    // Named queries: the ready ones of schemas/queries/, and, for a source table without a
    // schema file (cataloged with the standard columns), the same three questions about it.
    const withSchema = new Set(schemas.map(tableOfSchemaFile));
    const queries: NamedQuerySpec[] = namedQueriesFromFiles(readyQueries(c.schemasDir));
    const standardSource = tables.find((t) => t.sourceTable === sourceTable && !withSchema.has(t.sourceTable));
    if (standardSource !== undefined || queries.length === 0) {
      const target = standardSource ?? tables[0];
      if (target !== undefined) {
        queries.push(...namedQueries(c.databaseName, String(target.tableInput.name ?? glueTableName(target.sourceTable))));
      }
    }
    this.catalog = new Catalog(this, 'Catalog', {
      databaseName: c.databaseName,
      tables,
      bucket: this.archive.bucket,
      prefix: c.prefix,
      key: this.archive.key,
      accessLogs: this.archive.accessLogs,
      resultsExpiryDays: c.athenaResultsExpiryDays,
      queries,
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      function: this.archiver.function,
      onFailureQueue: this.source.onFailureQueue,
      maintenanceFunction: this.maintenance.function,
      maintenanceDeadLetterQueue: this.maintenance.deadLetterQueue,
      key: this.archive.key,
      // Alarm well before records reach the mapping's maximum age and go to the on-failure queue.
      iteratorAgeThresholdMs: Math.min(15 * 60, Math.floor(c.maxRecordAgeSeconds / 4)) * 1000,
      alarmEmail: c.alarmEmail,
      alarmTopicArn: c.alarmTopicArn,
    });

    new CfnOutput(this, 'ArchiveBucketName', { value: this.archive.bucket.bucketName, description: 'Archive bucket' });
    new CfnOutput(this, 'ArchiveDestination', {
      value: archiveUrl(this.archive.bucket, c.prefix),
      description: 'Where the function writes (ARCHIVE_DEST)',
    });
    new CfnOutput(this, 'ArchiveKeyArn', { value: this.archive.key.keyArn, description: 'KMS key of the archive and results' });
    new CfnOutput(this, 'FunctionName', { value: this.archiver.function.functionName, description: 'Archiver function' });
    new CfnOutput(this, 'OnFailureQueueUrl', { value: this.source.onFailureQueue.queueUrl, description: 'Batches that could not be archived' });
    new CfnOutput(this, 'CompactedBucketName', { value: this.compacted.bucket.bucketName, description: 'Compacted-layer bucket' });
    new CfnOutput(this, 'CompactedDestination', {
      value: archiveUrl(this.compacted.bucket, ''),
      description: 'Where the maintenance function writes compacted days (COMPACT_DEST)',
    });
    new CfnOutput(this, 'MaintenanceFunctionName', {
      value: this.maintenance.function.functionName,
      description: 'Maintenance function (compaction, verification)',
    });
    new CfnOutput(this, 'GlueDatabaseName', { value: c.databaseName, description: 'Glue database' });
    new CfnOutput(this, 'GlueTableNames', {
      value: tables.map((t) => String(t.tableInput.name)).join(','),
      description: 'Glue tables over the archive',
    });
    new CfnOutput(this, 'AthenaWorkGroupName', { value: this.catalog.workGroup.ref, description: 'Athena workgroup' });
    new CfnOutput(this, 'AthenaResultsBucketName', { value: this.catalog.resultsBucket.bucketName, description: 'Athena results' });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn, description: 'Alarm notifications' });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName, description: 'CloudWatch dashboard' });
    if (this.baseline !== undefined) {
      new CfnOutput(this, 'BaselineStateMachineArn', {
        value: this.baseline.stateMachine.stateMachineArn,
        description: 'Baseline workflow: start with {"exportType":"FULL_EXPORT"} or {"exportType":"INCREMENTAL_EXPORT","from":…,"to":…}',
      });
      new CfnOutput(this, 'BaselineExportBucketName', { value: this.baseline.exportBucket.bucketName, description: 'DynamoDB exports of the baseline workflow' });
      new CfnOutput(this, 'BaselineFunctionName', { value: this.baseline.function.functionName, description: 'Baseline function (batches of an export)' });
    }
    if (this.source.demoTable !== undefined) {
      new CfnOutput(this, 'DemoTableName', { value: this.source.demoTable.tableName, description: 'Demo source table' });
    }
  }
}
