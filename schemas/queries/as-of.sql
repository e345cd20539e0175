-- The state of every item as of a point in time T (UTC): the latest image per key at or
-- before T, leaving out items whose latest change is a REMOVE; a change archived twice
-- (same event_id, even under another sequence number
-- and time, as Kinesis Data Streams can deliver it) counts once: the earliest copy. Ties in time are broken by the sequence number (decimal
-- digits: longer is later). Replace T (twice if you also bound the partitions:
-- AND year <= '2026' keeps Athena from listing later partitions).
WITH deduplicated AS (
  SELECT event_id, event_name, keys, approximate_creation_time, sequence_number, new_image,
         row_number() OVER (
           PARTITION BY event_id
           ORDER BY approximate_creation_time, length(sequence_number), sequence_number
         ) AS copy
  FROM invoices
  WHERE approximate_creation_time <= TIMESTAMP '2026-01-01 00:30:00'
),
ranked AS (
  SELECT event_id, event_name, keys, approximate_creation_time, new_image,
         row_number() OVER (
           PARTITION BY keys
           ORDER BY approximate_creation_time DESC, length(sequence_number) DESC,
                    sequence_number DESC
         ) AS latest
  FROM deduplicated
  WHERE copy = 1
)
SELECT keys, approximate_creation_time AS changed_at, event_name, event_id, new_image AS item
FROM ranked
WHERE latest = 1 AND event_name <> 'REMOVE'
ORDER BY keys;
