-- How a request came (SPEC §3 `Sumber:`): loket, wa, telepon, email or lainnya. The
-- monthly report counts the channels.
ALTER TABLE tickets ADD COLUMN sumber TEXT NOT NULL DEFAULT 'loket';
