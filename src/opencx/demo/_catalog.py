"""What Northwind Mobile sells and where: names, places, plans, phones, pages, topics, stores."""

from __future__ import annotations

from dataclasses import dataclass

WEB = "web"
APP = "ios-app"
EMAIL = "email-esp"
SMS = "sms-gateway"
CALLS = "contact-center"
CHAT = "chat"
STORES = "stores"

SITE = "https://www.northwind-mobile.example"
APP_NAME = "Northwind Mobile"
APP_NAMESPACE = "com.northwind.mobile"
OLD_RELEASE = "5.1.4"
BROKEN_RELEASE = "5.2.0"
BUILDS = {OLD_RELEASE: "5140", BROKEN_RELEASE: "5200"}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    """Ava Liam Mia Noah Zoe Ethan Ivy Lucas Nora Owen Ruby Leo Maya Eli Aria Jack Lena Omar
    Sofia Kai Priya Mateo Chloe Sam Grace Diego Hana Ben Elena Tariq Aisha Carlos Emma James
    Olivia William Sophia Daniel Isabella Michael Camila David Fatima Jose Mei Andre Keisha
    Ryan Linh Hector Rachel Marcus Yuki Brandon Nia Kevin Ana Tyler Jasmine Raj"""
)
LAST_NAMES = _words(
    """Nguyen Smith Garcia Johnson Kim Brown Patel Lopez Miller Davis Wilson Chen Martin Clark
    Lewis Young Hall Allen Khan Rossi Walker Wright Scott Adams Baker Rivera Williams Jones
    Hernandez Gonzalez Perez Taylor Anderson Thomas Moore Jackson White Harris Thompson Ramirez
    Robinson Lee Sanchez Torres Flores Green Nelson Hill Campbell Mitchell Roberts Carter
    Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Murphy Cook
    Rogers Morgan Cooper Peterson Bailey Reed Kelly Howard Ward Cox Richardson Wood Watson
    Brooks Bennett Gray James Hughes Price Sanders Myers Long Ross Foster"""
)
MAIL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com")


@dataclass(frozen=True, slots=True)
class Place:
    """A city the brand serves, its time zone, area codes and stores."""

    city: str
    state: str
    tz: str
    area_codes: tuple[str, ...]
    code: str
    stores: int
    weight: float


PLACES: tuple[Place, ...] = (
    Place("New York", "NY", "America/New_York", ("212", "718", "917"), "nyc", 3, 10),
    Place("Boston", "MA", "America/New_York", ("617", "857"), "bos", 1, 4),
    Place("Philadelphia", "PA", "America/New_York", ("215", "267"), "phl", 2, 5),
    Place("Atlanta", "GA", "America/New_York", ("404", "678"), "atl", 2, 5),
    Place("Miami", "FL", "America/New_York", ("305", "786"), "mia", 2, 5),
    Place("Charlotte", "NC", "America/New_York", ("704", "980"), "clt", 1, 3),
    Place("Detroit", "MI", "America/Detroit", ("313",), "dtw", 1, 3),
    Place("Chicago", "IL", "America/Chicago", ("312", "773"), "chi", 2, 8),
    Place("Houston", "TX", "America/Chicago", ("713", "832"), "hou", 2, 7),
    Place("Dallas", "TX", "America/Chicago", ("214", "469"), "dal", 2, 6),
    Place("Minneapolis", "MN", "America/Chicago", ("612",), "msp", 1, 3),
    Place("Denver", "CO", "America/Denver", ("303", "720"), "den", 1, 4),
    Place("Salt Lake City", "UT", "America/Denver", ("801",), "slc", 1, 2),
    Place("Phoenix", "AZ", "America/Phoenix", ("602", "480"), "phx", 2, 5),
    Place("Los Angeles", "CA", "America/Los_Angeles", ("213", "310"), "lax", 3, 10),
    Place("San Francisco", "CA", "America/Los_Angeles", ("415", "628"), "sfo", 1, 5),
    Place("Seattle", "WA", "America/Los_Angeles", ("206", "425"), "sea", 1, 5),
    Place("Portland", "OR", "America/Los_Angeles", ("503", "971"), "pdx", 1, 3),
    Place("Anchorage", "AK", "America/Anchorage", ("907",), "anc", 1, 1),
    Place("Honolulu", "HI", "Pacific/Honolulu", ("808",), "hnl", 1, 1),
)
PLACE_WEIGHTS = tuple(p.weight for p in PLACES)


@dataclass(frozen=True, slots=True)
class Plan:
    """A monthly phone plan."""

    plan_id: str
    name: str
    monthly: float


PLANS: tuple[Plan, ...] = (
    Plan("basic-5gb", "Basic 5GB", 25.0),
    Plan("plus-20gb", "Plus 20GB", 40.0),
    Plan("unlimited", "Unlimited", 60.0),
    Plan("unlimited-plus", "Unlimited Plus", 75.0),
    Plan("unlimited-max", "Unlimited Max", 90.0),
)
PLAN_WEIGHTS = (15, 25, 30, 18, 12)


@dataclass(frozen=True, slots=True)
class Product:
    """Something sold in the shop or a store."""

    product_id: str
    sku: str
    name: str
    category: str
    price: float


PHONES: tuple[Product, ...] = (
    Product("iphone-17-pro-max", "APL-17PM-256", "iPhone 17 Pro Max", "phones", 1199.0),
    Product("iphone-17-pro", "APL-17P-256", "iPhone 17 Pro", "phones", 999.0),
    Product("iphone-17", "APL-17-128", "iPhone 17", "phones", 799.0),
    Product("iphone-16e", "APL-16E-128", "iPhone 16e", "phones", 599.0),
    Product("galaxy-s26-ultra", "SAM-S26U-256", "Galaxy S26 Ultra", "phones", 1199.0),
    Product("galaxy-s26", "SAM-S26-128", "Galaxy S26", "phones", 799.0),
    Product("galaxy-a56", "SAM-A56-128", "Galaxy A56", "phones", 399.0),
    Product("pixel-10-pro", "GOO-P10P-128", "Pixel 10 Pro", "phones", 999.0),
    Product("pixel-10", "GOO-P10-128", "Pixel 10", "phones", 799.0),
    Product("pixel-10a", "GOO-P10A-128", "Pixel 10a", "phones", 499.0),
    Product("moto-g-power", "MOT-GPW-128", "Moto G Power", "phones", 229.0),
)
PHONE_WEIGHTS = (3, 4, 6, 4, 2, 4, 4, 2, 2, 2, 3)
ACCESSORIES: tuple[Product, ...] = (
    Product("clear-case", "ACC-CASE-CLR", "Clear Case", "accessories", 39.0),
    Product("magsafe-charger", "ACC-CHG-MAG", "MagSafe Charger", "accessories", 49.0),
    Product("screen-protector", "ACC-SCR-GLS", "Glass Screen Protector", "accessories", 29.0),
    Product("airpods-4", "APL-APD-4", "AirPods 4", "accessories", 129.0),
    Product("galaxy-buds-3", "SAM-BDS-3", "Galaxy Buds 3", "accessories", 179.0),
    Product("car-mount", "ACC-CAR-MNT", "Car Mount", "accessories", 35.0),
)

# name -> (path, title); product and article pages add a slug to the path.
WEB_PAGES: dict[str, tuple[str, str]] = {
    "Home": ("/", "Northwind Mobile: phones and plans"),
    "Plans": ("/plans", "Plans | Northwind Mobile"),
    "Phones": ("/phones", "Phones | Northwind Mobile"),
    "Deals": ("/deals", "Deals | Northwind Mobile"),
    "Coverage": ("/coverage", "Coverage map | Northwind Mobile"),
    "Product": ("/phones/", "Shop | Northwind Mobile"),
    "Cart": ("/cart", "Your cart | Northwind Mobile"),
    "Checkout": ("/checkout", "Checkout | Northwind Mobile"),
    "Order Confirmation": ("/checkout/confirmation", "Thank you | Northwind Mobile"),
    "Support": ("/support", "Support | Northwind Mobile"),
    "Support Article": ("/support/articles/", "Support | Northwind Mobile"),
    "Sign In": ("/signin", "Sign in | Northwind Mobile"),
    "Account": ("/account", "My account | Northwind Mobile"),
    "Bill": ("/account/bill", "Your bill | Northwind Mobile"),
    "Password Reset": ("/account/password-reset", "Reset your password | Northwind Mobile"),
}
BROWSE_PAGES = ("Home", "Plans", "Phones", "Deals", "Coverage")
APP_BROWSE_SCREENS = ("Home", "Usage", "Plans", "Shop", "Account")

# slug, title, category
ARTICLES: tuple[tuple[str, str, str], ...] = (
    ("reset-your-password", "Reset your password", "account"),
    ("understand-your-bill", "Understand your bill", "billing"),
    ("set-up-autopay", "Set up AutoPay", "billing"),
    ("activate-esim", "Activate an eSIM", "device"),
    ("transfer-your-number", "Bring your number to Northwind", "plans"),
    ("international-roaming", "Travel abroad with Northwind", "roaming"),
    ("fix-no-signal", "No signal or dropped calls", "technical"),
    ("wifi-calling", "Turn on Wi-Fi calling", "technical"),
    ("trade-in", "Trade in your phone", "device"),
)
CODE_NOT_RECEIVED = ("verification-code-not-received", "Didn't get a verification code?", "account")

# topic -> queue; weights are for contacts that have no other cause.
QUEUES = {
    "billing": "billing",
    "technical": "tech-support",
    "device": "tech-support",
    "roaming": "tech-support",
    "plan change": "sales",
    "order status": "sales",
    "password": "account-security",
    "cancellation": "retention",
}
CALL_TOPICS = ("billing", "technical", "device", "plan change", "order status", "roaming")
CALL_TOPIC_WEIGHTS = (34, 22, 13, 12, 9, 6)
STORE_REASONS = (
    "new phone",
    "accessories",
    "repair",
    "billing question",
    "plan change",
    "trade-in",
    "payment",
)
STORE_REASON_WEIGHTS = (30, 15, 15, 14, 10, 6, 10)
CANCEL_REASONS = ("price", "coverage", "moving", "competitor offer", "service")

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/141.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/26.0 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 26_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 16; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/141.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0",
)
USER_AGENT_WEIGHTS = (38, 17, 25, 14, 6)
IPHONE_MODELS = ("iPhone17,1", "iPhone17,3", "iPhone16,2", "iPhone15,4", "iPhone14,7")
IOS_VERSIONS = ("26.1", "26.0.1", "18.7", "18.6.2")

# Where anonymous visitors come from (utm source, medium); None is direct or organic.
CAMPAIGNS: tuple[tuple[str, str, str] | None, ...] = (
    None,
    None,
    None,
    ("google", "cpc", "brand-search"),
    ("google", "cpc", "phones-generic"),
    ("facebook", "social", "switch-and-save"),
    ("instagram", "social", "new-iphone"),
    ("bing", "cpc", "brand-search"),
)
