-- The history of one item: every change to the item with key pk = 'INV#1001', oldest
-- first, each change once even if it was archived twice (the earliest copy is kept).
-- Works on the table of any format (standard columns only). Replace the table name and
-- the key; for a composite key, add a condition per key attribute ('$.sk.S', '$.id.N').
SELECT approximate_creation_time, event_name, event_id, sequence_number, new_image, old_image
FROM (
  SELECT *, row_number() OVER (
           PARTITION BY event_id
           ORDER BY approximate_creation_time, length(sequence_number), sequence_number
         ) AS copy
  FROM invoices
  WHERE json_extract_scalar(keys, '$.pk.S') = 'INV#1001'
) AS changes
WHERE copy = 1
ORDER BY approximate_creation_time, length(sequence_number), sequence_number;
