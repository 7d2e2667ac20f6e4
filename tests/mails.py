"""Mail as the central DWH side's clients and servers really shape it (made-up people and
numbers): Gmail, Outlook/Exchange and Thunderbird replies, a forward, Postfix and Exchange
delivery reports, Exchange and Gmail out-of-office replies."""

from __future__ import annotations

import base64
import quopri
from email.message import EmailMessage

ADMIN = "admin-dwh@example.go.id"
RECAP_ID = "<rekap-1-2026-11-24@example.go.id>"
OFFICE = "disdukcapil@example.go.id"
SUBJECT = "Re: Rekap sinkronisasi NIK DWH - Disdukcapil Kota Sibolga - 24 Nov 2026 - 2 tiket [SINKRON 12.73 B1]"
AUTH_PASS = "mx.example.go.id; spf=pass smtp.mailfrom=example.go.id; dkim=pass header.d=example.go.id; dmarc=pass header.from=example.go.id"


SIGNATURE = "-- "  # the signature delimiter, trailing space included


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def gmail_reply(body: str, *, sender: str = ADMIN, refs: str = RECAP_ID, mid: str = "<CAG1@mail.gmail.com>",
                subject: str = SUBJECT, auth: str = AUTH_PASS) -> bytes:  # fmt: skip
    """multipart/alternative, quoted-printable, the recap quoted under "Pada … menulis:"."""
    quoted = (f"{body}\n\nPada Sel, 24 Nov 2026 pukul 15.00 Disdukcapil Kota Sibolga"
              f" <{OFFICE}> menulis:\n> Rekap sinkronisasi NIK\n> NIK       : 1273014506850001\n")  # fmt: skip
    qp = quopri.encodestring(quoted.encode()).decode()
    html = (f"<div dir=\"ltr\">{body.replace(chr(10), '<br>')}</div><br><div class=\"gmail_quote\">"
            "<div>Pada Sel, 24 Nov 2026 menulis:</div><blockquote>NIK 1273014506850001"
            "</blockquote></div>")  # fmt: skip
    return crlf(f"""Return-Path: <{sender}>
Authentication-Results: {auth}
From: Admin DWH Pusat <{sender}>
To: {OFFICE}
Subject: {subject}
Date: Wed, 25 Nov 2026 09:12:00 +0700
Message-ID: {mid}
In-Reply-To: {refs}
References: {refs}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="000000000000abc"

--000000000000abc
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

{qp}
--000000000000abc
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

{quopri.encodestring(html.encode()).decode()}
--000000000000abc--
""")


def outlook_html_reply(
    body_html: str, *, mid: str = "<SG2PR01MB@apcprd01.prod.outlook.com>"
) -> bytes:
    """HTML only, base64, the original under Outlook's divRplyFwdMsg; no In-Reply-To kept
    (a forward or a new thread): it is found by the subject's tag."""
    html = (f"<html><head><style>p{{margin:0}}</style></head><body><p>{body_html}</p>"
            "<hr><div id=\"divRplyFwdMsg\"><b>From:</b> Disdukcapil<br><b>Sent:</b> 24 Nov<br>"
            "NIK 1273014506850001</div></body></html>")  # fmt: skip
    encoded = base64.encodebytes(html.encode()).decode()
    return crlf(f"""Authentication-Results: {AUTH_PASS}
From: "Admin DWH" <{ADMIN}>
To: <{OFFICE}>
Subject: RE: {SUBJECT.removeprefix("Re: ")}
Date: Wed, 25 Nov 2026 10:00:00 +0700
Message-ID: {mid}
Thread-Topic: Rekap sinkronisasi NIK DWH
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64
MIME-Version: 1.0

{encoded}""")


def thunderbird_reply(body: str, *, mid: str = "<4f2a@example.go.id>") -> bytes:
    return crlf(f"""Authentication-Results: {AUTH_PASS}
From: Admin DWH <{ADMIN}>
To: {OFFICE}
Subject: {SUBJECT}
Date: Wed, 25 Nov 2026 11:00:00 +0700
Message-ID: {mid}
In-Reply-To: {RECAP_ID}
References: {RECAP_ID}
User-Agent: Mozilla Thunderbird
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

{body}

On 24/11/2026 15.00, Disdukcapil Kota Sibolga wrote:
> Rekap sinkronisasi NIK DWH
> #1 NIK 1273014506850001

{SIGNATURE}
Admin DWH Pusat
""")


def with_xlsx(body: str, workbook: bytes, *, mid: str = "<xlsx-1@example.go.id>") -> bytes:
    message = EmailMessage()
    message["Authentication-Results"] = AUTH_PASS
    message["From"] = f"Admin DWH <{ADMIN}>"
    message["To"] = OFFICE
    message["Subject"] = SUBJECT
    message["Message-ID"] = mid
    message["In-Reply-To"] = RECAP_ID
    message.set_content(body)
    message.add_attachment(
        workbook, maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename="rekap-sinkronisasi-nik-2026-11-24.xlsx",
    )  # fmt: skip
    return message.as_bytes()


def exchange_out_of_office(*, mid: str = "<oof-1@example.go.id>") -> bytes:
    return crlf(f"""From: Admin DWH <{ADMIN}>
To: {OFFICE}
Subject: Automatic reply: {SUBJECT.removeprefix("Re: ")}
Date: Wed, 25 Nov 2026 08:00:00 +0700
Message-ID: {mid}
In-Reply-To: {RECAP_ID}
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: {ADMIN}
Content-Type: text/plain; charset="us-ascii"

Saya sedang cuti sampai 30 November. Sudah dibaca nanti.
""")


def gmail_vacation(*, mid: str = "<vac-1@mail.gmail.com>") -> bytes:
    return crlf(f"""From: Admin DWH <{ADMIN}>
To: {OFFICE}
Subject: {SUBJECT}
Date: Wed, 25 Nov 2026 08:01:00 +0700
Message-ID: {mid}
In-Reply-To: {RECAP_ID}
Auto-Submitted: auto-replied
Precedence: bulk
Content-Type: text/plain; charset="UTF-8"

Terima kasih, email Anda sudah diterima. OK.
""")


def postfix_bounce(status: str = "5.1.1", *, action: str = "failed",
                   mid: str = "<20261124080001.AB12@mx.example.go.id>") -> bytes:  # fmt: skip
    return crlf(f"""From: MAILER-DAEMON@mx.example.go.id (Mail Delivery System)
To: {OFFICE}
Subject: Undelivered Mail Returned to Sender
Date: Tue, 24 Nov 2026 15:00:05 +0700
Message-ID: {mid}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="B12.1764000005/mx.example.go.id"

--B12.1764000005/mx.example.go.id
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.go.id.
I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{ADMIN}>: host mail.example.go.id said: 550 5.1.1 <{ADMIN}>:
    Recipient address rejected: User unknown in virtual mailbox table

--B12.1764000005/mx.example.go.id
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.go.id
X-Postfix-Queue-ID: B12
Arrival-Date: Tue, 24 Nov 2026 15:00:01 +0700

Final-Recipient: rfc822; {ADMIN}
Original-Recipient: rfc822;{ADMIN}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.example.go.id
Diagnostic-Code: smtp; 550 {status} <{ADMIN}>: Recipient address rejected: User
    unknown in virtual mailbox table

--B12.1764000005/mx.example.go.id
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Disdukcapil Kota Sibolga <{OFFICE}>
To: {ADMIN}
Subject: Rekap sinkronisasi NIK DWH - 24 Nov 2026 - 2 tiket [SINKRON 12.73 B1]
Message-ID: {RECAP_ID}

--B12.1764000005/mx.example.go.id--
""")


def exchange_bounce(*, mid: str = "<ndr-1@ex.example.go.id>") -> bytes:
    """Exchange's NDR: the original attached whole as message/rfc822."""
    return crlf(f"""From: Microsoft Outlook <postmaster@example.go.id>
To: {OFFICE}
Subject: Undeliverable: Rekap sinkronisasi NIK DWH [SINKRON 12.73 B1]
Date: Tue, 24 Nov 2026 15:01:00 +0700
Message-ID: {mid}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="ndr"

--ndr
Content-Type: text/html; charset="us-ascii"

<p><b>Your message to {ADMIN} couldn't be delivered.</b></p><p>Mailbox full</p>

--ndr
Content-Type: message/delivery-status

Reporting-MTA: dns;ex.example.go.id
Received-From-MTA: dns;mx.example.go.id

Final-Recipient: rfc822;{ADMIN}
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp;554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException

--ndr
Content-Type: message/rfc822

From: Disdukcapil Kota Sibolga <{OFFICE}>
To: {ADMIN}
Subject: Rekap sinkronisasi NIK DWH [SINKRON 12.73 B1]
Message-ID: {RECAP_ID}
Content-Type: text/plain

NIK : 1273014506850001

--ndr--
""")
