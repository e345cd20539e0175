-- Changes per day and kind. The year/month/day conditions prune partitions (partition
-- projection); count(DISTINCT event_id) ignores changes archived twice.
SELECT year, month, day, event_name, count(DISTINCT event_id) AS changes
FROM invoices
WHERE year >= '2025'
GROUP BY year, month, day, event_name
ORDER BY year, month, day, event_name;
