-- The views of make db (lead-export db), made again on every load after the tables.

-- Seed 004's frontend grouping: the lead records of every run per (seeker, listing).
CREATE VIEW event_leads_grouped AS
SELECT seeker_id,
       listing_id,
       COUNT(*)                AS runs,
       SUM(total_actions)      AS total_actions,
       SUM(lead_score)         AS lead_score,
       MIN(first_action_date)  AS first_action_date,
       MAX(last_action_date)   AS last_action_date,
       (SELECT e.last_action_type FROM event_leads e
         WHERE e.seeker_id = g.seeker_id AND e.listing_id = g.listing_id
         ORDER BY e.last_action_date DESC, e.run_id DESC LIMIT 1) AS last_action_type,
       MIN(created_at)         AS first_seen_at,
       MAX(updated_at)         AS last_seen_at
FROM event_leads g
GROUP BY seeker_id, listing_id;

-- Seed 003's pool of leads for sale: scored permits not sold or delivered.
CREATE VIEW permit_pool AS
SELECT * FROM permits WHERE status = 'new';
