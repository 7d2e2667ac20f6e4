-- /cari (SPEC §3 "Search"): found by index, never by a scan.
-- The phone's digits reversed: "the last 4 digits" is then a prefix, which a B-tree finds.
-- Tickets from before this migration get it (and their name row) at the next start.
ALTER TABLE tickets ADD COLUMN phone_rev TEXT;
CREATE INDEX tickets_phone_rev ON tickets (phone_rev) WHERE phone_rev IS NOT NULL;
-- Names, folded (case and accents) by the code, in a trigram index: any part of three
-- letters or more is found. The row id is the ticket's id; the purge deletes the row.
CREATE VIRTUAL TABLE ticket_names USING fts5 (nama, tokenize = 'trigram');
CREATE INDEX tickets_lembaga_key ON tickets (lembaga_key, id);
CREATE INDEX tickets_opened_at ON tickets (opened_at);
