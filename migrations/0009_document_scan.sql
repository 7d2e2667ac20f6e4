-- A KK/KTP-el scan may come as a file (a document) instead of a photo (SPEC §3): "Foto"
-- sends it back as what it is.
ALTER TABLE tickets ADD COLUMN scan_is_document INTEGER NOT NULL DEFAULT 0;
