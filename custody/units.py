"""Units an item's quantity may be given in: SI mass, volume and length, counts,
and the unit codes of the CITES trade database (copied from the CITES guidelines
for the preparation and submission of annual reports).

Invariant: `check_unit` accepts exactly the keys of `UNITS` (case-insensitively
for the CITES codes) and returns the canonical spelling, so stored units are
comparable across items and agencies.
"""

from __future__ import annotations

from custody.errors import InvalidInput

SI_UNITS: dict[str, str] = {
    "ug": "micrograms",
    "µg": "micrograms",
    "mg": "milligrams",
    "g": "grams",
    "kg": "kilograms",
    "t": "metric tons",
    "ml": "millilitres",
    "mL": "millilitres",
    "cl": "centilitres",
    "dl": "decilitres",
    "l": "litres",
    "L": "litres",
    "cm3": "cubic centimetres",
    "m3": "cubic metres",
    "mm": "millimetres",
    "cm": "centimetres",
    "m": "metres",
    "cm2": "square centimetres",
    "m2": "square metres",
}

COUNT_UNITS: dict[str, str] = {
    "count": "pieces counted",
    "pcs": "pieces",
    "items": "items",
    "pairs": "pairs",
}

# CITES Trade Database unit codes.
CITES_UNITS: dict[str, str] = {
    "BAG": "Bags",
    "BAK": "Back skins",
    "BOT": "Bottles",
    "BOX": "Boxes",
    "BSK": "Belly skins",
    "CAN": "Cans",
    "CAS": "Cases",
    "CCM": "Cubic centimetres",
    "CRT": "Cartons",
    "CTM": "Centimetres",
    "CUF": "Cubic feet",
    "CUM": "Cubic metres",
    "FEE": "Feet",
    "FLA": "Flasks",
    "GRM": "Grams",
    "HRN": "Hornback skins",
    "INC": "Inches",
    "ITE": "Items",
    "KIL": "Kilograms",
    "LTR": "Litres",
    "MGM": "Milligrams",
    "MLT": "Millilitres",
    "MTR": "Metres",
    "MYG": "Micrograms",
    "OUN": "Ounces",
    "PAI": "Pairs",
    "PCS": "Pieces",
    "PND": "Pounds",
    "SET": "Sets",
    "SHP": "Shipments",
    "SID": "Sides",
    "SKI": "Skins",
    "SQC": "Square centimetres",
    "SQD": "Square decimetres",
    "SQF": "Square feet",
    "SQM": "Square metres",
    "TON": "Metric tons",
}

UNITS: dict[str, str] = {**SI_UNITS, **COUNT_UNITS, **CITES_UNITS}
_BY_LOWER = {key.lower(): key for key in UNITS}


def check_unit(unit: str, *, where: str = "") -> str:
    """The canonical spelling of `unit` ("" stays ""), or `InvalidInput` naming the lists."""
    text = unit.strip()
    if not text:
        return ""
    if text in UNITS:
        return text
    key = _BY_LOWER.get(text.lower())
    if key is not None:
        return key
    at = f" ({where})" if where else ""
    raise InvalidInput(
        f"The unit '{text}'{at} is not known; use an SI unit ({', '.join(SI_UNITS)}), a count "
        f"({', '.join(COUNT_UNITS)}) or a CITES unit code ({', '.join(CITES_UNITS)})."
    )
