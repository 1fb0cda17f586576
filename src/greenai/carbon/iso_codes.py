"""ISO 3166-1 alpha-2 to alpha-3 country codes, for the countries in ``country_intensity.csv``.

Derived from the ISO 3166-1 table of Debian's ``iso-codes`` package (4.15.0,
https://salsa.debian.org/iso-codes-team/iso-codes): every alpha-3 code of the intensity table
was looked up there and its alpha-2 code written below. ``tests/carbon/test_iso_codes.py``
checks that the two tables cover each other exactly.
"""

from __future__ import annotations

_PAIRS = """
    AE:ARE AF:AFG AG:ATG AL:ALB AM:ARM AO:AGO AR:ARG AS:ASM AT:AUT AU:AUS AW:ABW AZ:AZE
    BA:BIH BB:BRB BD:BGD BE:BEL BF:BFA BG:BGR BH:BHR BI:BDI BJ:BEN BM:BMU BN:BRN BO:BOL
    BR:BRA BS:BHS BT:BTN BW:BWA BY:BLR BZ:BLZ CA:CAN CD:COD CF:CAF CG:COG CH:CHE CI:CIV
    CK:COK CL:CHL CM:CMR CN:CHN CO:COL CR:CRI CU:CUB CV:CPV CY:CYP CZ:CZE DE:DEU DJ:DJI
    DK:DNK DM:DMA DO:DOM DZ:DZA EC:ECU EE:EST EG:EGY EH:ESH ER:ERI ES:ESP ET:ETH FI:FIN
    FJ:FJI FK:FLK FO:FRO FR:FRA GA:GAB GB:GBR GD:GRD GE:GEO GF:GUF GH:GHA GI:GIB GL:GRL
    GM:GMB GN:GIN GP:GLP GQ:GNQ GR:GRC GT:GTM GU:GUM GW:GNB GY:GUY HK:HKG HN:HND HR:HRV
    HT:HTI HU:HUN ID:IDN IE:IRL IL:ISR IN:IND IQ:IRQ IR:IRN IS:ISL IT:ITA JM:JAM JO:JOR
    JP:JPN KE:KEN KG:KGZ KH:KHM KI:KIR KM:COM KN:KNA KP:PRK KR:KOR KW:KWT KY:CYM KZ:KAZ
    LA:LAO LB:LBN LC:LCA LK:LKA LR:LBR LS:LSO LT:LTU LU:LUX LV:LVA LY:LBY MA:MAR MD:MDA
    ME:MNE MG:MDG MK:MKD ML:MLI MM:MMR MN:MNG MO:MAC MQ:MTQ MR:MRT MS:MSR MT:MLT MU:MUS
    MV:MDV MW:MWI MX:MEX MY:MYS MZ:MOZ NA:NAM NC:NCL NE:NER NG:NGA NI:NIC NL:NLD NO:NOR
    NP:NPL NR:NRU NZ:NZL OM:OMN PA:PAN PE:PER PF:PYF PG:PNG PH:PHL PK:PAK PL:POL PM:SPM
    PR:PRI PS:PSE PT:PRT PY:PRY QA:QAT RE:REU RO:ROU RS:SRB RU:RUS RW:RWA SA:SAU SB:SLB
    SC:SYC SD:SDN SE:SWE SG:SGP SH:SHN SI:SVN SK:SVK SL:SLE SN:SEN SO:SOM SR:SUR SS:SSD
    ST:STP SV:SLV SY:SYR SZ:SWZ TC:TCA TD:TCD TG:TGO TH:THA TJ:TJK TL:TLS TM:TKM TN:TUN
    TO:TON TR:TUR TT:TTO TW:TWN TZ:TZA UA:UKR UG:UGA US:USA UY:URY UZ:UZB VC:VCT VE:VEN
    VG:VGB VI:VIR VN:VNM VU:VUT WS:WSM YE:YEM ZA:ZAF ZM:ZMB ZW:ZWE
"""

ALPHA2_TO_ALPHA3: dict[str, str] = dict(pair.split(":") for pair in _PAIRS.split())
# "UK" is not the United Kingdom's alpha-2 code (that is GB) but is "exceptionally reserved"
# for it in ISO 3166-1, and it is what most people type.
ALPHA2_TO_ALPHA3["UK"] = "GBR"


def to_alpha3(code: str) -> str:
    """Upper-case alpha-3 for an alpha-2 or alpha-3 code (any case); other input is returned
    upper-cased, unchanged, for the caller to reject."""
    code = code.strip().upper()
    return ALPHA2_TO_ALPHA3.get(code, code) if len(code) == 2 else code
