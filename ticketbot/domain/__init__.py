"""Pure domain code: no Telegram, no SMTP, no database."""
