"""Value vocabularies of the support corpus: openers, names, e-mail domains, month names and products.

Plain data, per language where it differs; `intentfusion.data.support` splits each table into train / val / test
patterns where held-out values matter (openers, products)."""

from __future__ import annotations

OPENERS: dict[str, tuple[str, ...]] = {
    "en": (
        "Hi there!",
        "Hello!",
        "Good morning!",
        "Hey!",
        "Hi team!",
        "Good afternoon!",
        "Hello, I hope you can help me.",
    ),
    "es": (
        "¡Hola!",
        "¡Buenos días!",
        "¡Buenas tardes!",
        "Hola, equipo.",
        "Hola, espero que me puedan ayudar.",
        "¡Buenas!",
    ),
    "de": (
        "Hallo!",
        "Guten Tag!",
        "Guten Morgen!",
        "Hallo zusammen!",
        "Hallo, ich hoffe, Sie können mir helfen.",
        "Moin!",
    ),
    "fr": (
        "Bonjour !",
        "Bonsoir !",
        "Salut !",
        "Bonjour à toute l'équipe !",
        "Bonjour, j'espère que vous pourrez m'aider.",
        "Coucou !",
    ),
}
FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Emma", "James", "Olivia", "Liam", "Sophie", "Daniel", "Grace", "Ryan"),
    "es": ("María", "Javier", "Lucía", "Carlos", "Sofía", "Diego", "Elena", "Pablo"),
    "de": ("Anna", "Lukas", "Lena", "Jonas", "Marie", "Felix", "Hannah", "Tobias"),
    "fr": ("Camille", "Louis", "Chloé", "Hugo", "Léa", "Julien", "Manon", "Thomas"),
}
LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("smith", "johnson", "brown", "taylor", "walker", "clark"),
    "es": ("lopez", "garcia", "martinez", "sanchez", "romero", "navarro"),
    "de": ("mueller", "schmidt", "fischer", "weber", "wagner", "becker"),
    "fr": ("martin", "bernard", "dubois", "moreau", "laurent", "girard"),
}
EMAIL_DOMAINS: dict[str, tuple[str, ...]] = {
    "en": ("gmail.com", "outlook.com", "yahoo.com", "icloud.com"),
    "es": ("gmail.com", "hotmail.es", "yahoo.es", "outlook.com"),
    "de": ("gmail.com", "web.de", "gmx.de", "t-online.de"),
    "fr": ("gmail.com", "orange.fr", "free.fr", "laposte.net"),
}
MONTHS: dict[str, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
}
PRODUCTS: tuple[str, ...] = (
    "iPhone 14",
    "iPhone 15 Pro",
    "Galaxy S23",
    "Pixel 8",
    "MacBook Air",
    "iPad Air",
    "Surface Pro 9",
    "Kindle Paperwhite",
    "Chromebook",
)
