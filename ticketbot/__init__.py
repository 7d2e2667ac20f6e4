"""ticketbot: SOP 09 Disdukcapil (sinkronisasi NIK pada Data Warehouse) as a Telegram ticket."""

__version__ = "0.2.0"
