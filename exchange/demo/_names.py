"""Word lists the demo's registers draw from: Persian names in Latin script, places, makes."""

from __future__ import annotations

__all__ = [
    "CITIES",
    "COLOURS",
    "COMPANY_WORDS",
    "FEMALE_NAMES",
    "INSURERS",
    "LAST_NAMES",
    "MALE_NAMES",
    "MODELS",
    "STREETS",
]

FEMALE_NAMES = (
    "Sara", "Maryam", "Zahra", "Fatemeh", "Narges", "Leila", "Niloufar", "Shirin", "Parisa",
    "Mahsa", "Elham", "Roya", "Azadeh", "Samira", "Golnaz", "Yasaman", "Mina", "Setareh",
    "Ziba", "Fereshteh", "Tahmineh", "Shabnam", "Nasrin", "Hanieh",
)  # fmt: skip

MALE_NAMES = (
    "Ali", "Mohammad", "Reza", "Hossein", "Mehdi", "Amir", "Hamid", "Saeed", "Babak",
    "Kourosh", "Dariush", "Majid", "Behzad", "Farhad", "Kaveh", "Arash", "Siavash", "Omid",
    "Javad", "Morteza", "Hassan", "Peyman", "Navid", "Sina",
)  # fmt: skip

LAST_NAMES = (
    "Ahmadi", "Mohammadi", "Hosseini", "Rezaei", "Moradi", "Karimi", "Jafari", "Rahimi",
    "Heidari", "Sadeghi", "Tehrani", "Shirazi", "Esfahani", "Ghorbani", "Kazemi", "Nouri",
    "Hashemi", "Mousavi", "Rostami", "Farahani", "Bagheri", "Amini", "Najafi", "Sharifi",
    "Tabrizi", "Kermani", "Yazdani", "Golestani", "Zand", "Afshar", "Ebrahimi", "Soltani",
)  # fmt: skip

#: (province, county, city, latitude, longitude, localities)
CITIES = (
    ("Tehran", "Tehran", "Tehran", 35.6892, 51.3890,
     ("Tajrish", "Yousefabad", "Narmak", "Saadatabad", "Shahrak-e Gharb", None)),
    ("Isfahan", "Isfahan", "Isfahan", 32.6546, 51.6680, ("Jolfa", "Sepahan Shahr", None)),
    ("Fars", "Shiraz", "Shiraz", 29.5918, 52.5837, ("Maaliabad", "Zerehi", None)),
    ("Khorasan Razavi", "Mashhad", "Mashhad", 36.2605, 59.6168, ("Sajjad", "Ahmadabad", None)),
    ("East Azerbaijan", "Tabriz", "Tabriz", 38.0962, 46.2738, ("Valiasr", "Roshdieh", None)),
    ("Gilan", "Rasht", "Rasht", 37.2808, 49.5832, ("Golsar", None)),
    ("Kerman", "Kerman", "Kerman", 30.2839, 57.0834, (None,)),
    ("Yazd", "Yazd", "Yazd", 31.8974, 54.3569, ("Safaieh", None)),
    ("Khuzestan", "Ahvaz", "Ahvaz", 31.3183, 48.6706, ("Kianpars", None)),
    ("Mazandaran", "Sari", "Sari", 36.5633, 53.0601, (None,)),
)  # fmt: skip

STREETS = (
    "Valiasr St.", "Enghelab St.", "Azadi St.", "Shariati St.", "Chaharbagh-e Abbasi St.",
    "Zand Blvd.", "Imam Reza St.", "Ferdowsi St.", "Hafez St.", "Keshavarz Blvd.",
    "Motahari St.", "Saadi St.", "Bahar St.", "Nejatollahi St.", "Pasdaran St.",
)  # fmt: skip

COMPANY_WORDS = (
    "Pars", "Sepahan", "Alborz", "Kaveh", "Negin", "Arya", "Tejarat", "Sanat", "Omran",
    "Farayand", "Kish", "Damavand", "Zagros", "Karun", "Khazar", "Simorgh", "Mehr", "Atlas",
)  # fmt: skip

#: (make, world manufacturer identifier, model)
MODELS = (
    ("IKCO", "NAA", "Samand LX"), ("IKCO", "NAA", "Peugeot Pars"), ("IKCO", "NAA", "Dena"),
    ("IKCO", "NAA", "Runna"), ("SAIPA", "NAS", "Pride 131"), ("SAIPA", "NAS", "Tiba"),
    ("SAIPA", "NAS", "Quick"), ("SAIPA", "NAS", "Shahin"),
    ("Pars Khodro", "NAP", "Brilliance H330"),
)  # fmt: skip

COLOURS = ("white", "silver", "black", "grey", "blue", "red", "beige")

#: (insurer, code at the Central Insurance register)
INSURERS = (
    ("Iran Insurance", "IRI"), ("Asia Insurance", "ASI"), ("Alborz Insurance", "ALB"),
    ("Dana Insurance", "DAN"), ("Parsian Insurance", "PRS"), ("Moallem Insurance", "MOA"),
)  # fmt: skip
