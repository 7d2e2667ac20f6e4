"""Region codes (Kemendagri) used only to *warn* about unlikely NIK/KK prefixes.

A NIK keeps the region of first registration for life and regions get split and
renumbered, so an unknown code is never a reason to reject.
"""

PROVINCES: dict[str, str] = {
    "11": "Aceh", "12": "Sumatera Utara", "13": "Sumatera Barat", "14": "Riau",
    "15": "Jambi", "16": "Sumatera Selatan", "17": "Bengkulu", "18": "Lampung",
    "19": "Kepulauan Bangka Belitung", "21": "Kepulauan Riau", "31": "DKI Jakarta",
    "32": "Jawa Barat", "33": "Jawa Tengah", "34": "DI Yogyakarta", "35": "Jawa Timur",
    "36": "Banten", "51": "Bali", "52": "Nusa Tenggara Barat", "53": "Nusa Tenggara Timur",
    "61": "Kalimantan Barat", "62": "Kalimantan Tengah", "63": "Kalimantan Selatan",
    "64": "Kalimantan Timur", "65": "Kalimantan Utara", "71": "Sulawesi Utara",
    "72": "Sulawesi Tengah", "73": "Sulawesi Selatan", "74": "Sulawesi Tenggara",
    "75": "Gorontalo", "76": "Sulawesi Barat", "81": "Maluku", "82": "Maluku Utara",
    "91": "Papua", "92": "Papua Barat", "93": "Papua Selatan", "94": "Papua Tengah",
    "95": "Papua Pegunungan", "96": "Papua Barat Daya",
}  # fmt: skip

# Sumatera Utara in full: the office's own province, where most NIKs come from.
SUMATERA_UTARA: dict[str, str] = {
    "01": "Tapanuli Tengah", "02": "Tapanuli Utara", "03": "Tapanuli Selatan", "04": "Nias",
    "05": "Langkat", "06": "Karo", "07": "Deli Serdang", "08": "Simalungun", "09": "Asahan",
    "10": "Labuhanbatu", "11": "Dairi", "12": "Toba", "13": "Mandailing Natal",
    "14": "Nias Selatan", "15": "Pakpak Bharat", "16": "Humbang Hasundutan", "17": "Samosir",
    "18": "Serdang Bedagai", "19": "Batu Bara", "20": "Padang Lawas Utara",
    "21": "Padang Lawas", "22": "Labuhanbatu Selatan", "23": "Labuhanbatu Utara",
    "24": "Nias Utara", "25": "Nias Barat", "71": "Medan", "72": "Pematangsiantar",
    "73": "Sibolga", "74": "Tanjungbalai", "75": "Binjai", "76": "Tebing Tinggi",
    "77": "Padangsidimpuan", "78": "Gunungsitoli",
}  # fmt: skip


def known_regency(province: str, regency: str) -> bool:
    """Known for Sumatera Utara; elsewhere only the plausible ranges (01–42, 71–79)."""
    if province == "12":
        return regency in SUMATERA_UTARA
    number = int(regency)
    return 1 <= number <= 42 or 71 <= number <= 79
