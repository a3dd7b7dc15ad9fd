"""What Northwind Mobile's customers write: survey comments, chat lines and agent notes."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from opencx.demo._catalog import (
    BROKEN_RELEASE,
    FIRST_NAMES,
    IOS_VERSIONS,
    OLD_RELEASE,
    PHONES,
    PLACES,
    PLANS,
)
from opencx.errors import InvalidInput

__all__ = ["TONES", "TOPICS", "sample_verbatims", "verbatim"]


def _phrasebook(text: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """Parse `[key subkey]` sections (topic and tone, say) of templates, one or more
    (" | ") per line."""
    book: dict[str, dict[str, tuple[str, ...]]] = {}
    key = subkey = ""
    for line in text.strip().splitlines():
        line = line.strip()
        if line.startswith("["):
            key, subkey = line.strip("[]").split()
            book.setdefault(key, {})[subkey] = ()
        else:
            book[key][subkey] += tuple(line.split(" | "))
    return book


TONES: tuple[str, ...] = ("positive", "neutral", "negative")

# A verbatim is an optional opener, one core statement, up to two follow-ups and an optional
# ending, joined the way people join them, then roughened (case, punctuation, typos). Slots
# in braces take concrete details from the brand's catalogue, so two comments about the
# same thing rarely read the same. Sections are `[topic tone]`; " | " separates entries.
_CORE = _phrasebook(
    """
    [password_reset_app negative]
    Since the {version} update I can't reset my password in the app, the SMS code never arrives.
    Tried to reset my password in the app {n} times and the verification code never came.
    The app says it sent me a code by text but nothing ever shows up.
    Locked out after the latest app update, the forgot password screen just waits for a code.
    Password reset is broken in the new app version, no text message with the code.
    I requested the one-time code {n} times in the app and never got a single SMS.
    The reset screen in the app keeps asking for a 6-digit code that never arrives.
    Couldn't log in to the app after updating to {version}, the reset code text never came.
    Your app's forgot-password feature is useless, the OTP never shows up on my {phone}.
    Reset my password? Sure, if the code ever arrived. Waited {minutes} minutes for the text.
    The app update logged me out and I can't get back in, the verification SMS never comes.
    The app keeps saying code sent but my phone never receives the reset code.
    Forgot my password and the app reset is a dead end, the security code text never turns up.
    Can't sign in to the app, password reset sends no code.
    Every time I hit resend code in the app nothing happens, no SMS, no password reset.
    Version {version} of the app broke password reset, the confirmation code never gets texted.
    [password_reset_app neutral]
    How do I reset my password in the app if I changed my number?
    Is there a way to get the password reset code by email instead of SMS?
    Reset my password today in the app, the code took a couple of minutes to arrive.
    I reset my password on the website because I couldn't find the option in the app.
    Had to request the reset code twice in the app but got in eventually.
    Does the app support resetting a password without the text message code?
    Changed my password in the app after the {version} update, the code came on the second try.
    [password_reset_app positive]
    Reset my password in the app and the code came through instantly.
    Forgot my password, the SMS code arrived in seconds and I was back in the app.
    Password reset in the app was quick and painless.
    Glad the reset code problem is fixed in the latest app update, worked first time.
    The verification text arrived right away when I reset my login in the app.
    Locked myself out but the app password reset and the code by text made it easy.
    [billing negative]
    I was charged {amount} twice this month.
    My bill went up by {small} with no explanation.
    There's a {small} late fee on my bill even though AutoPay was on.
    Got charged for roaming in {month} that I never used.
    The bill says I owe {amount} but I paid in full on the {day}.
    My AutoPay failed and nobody told me until the reminder email.
    Still waiting for the refund of {amount} I was promised {weeks} weeks ago.
    The app, the email and the paper bill show three different amounts.
    I keep getting charged for an insurance add-on I cancelled in {month}.
    Was billed for the {plan} plan when I'm on {plan}.
    Hidden fees everywhere on my bill, {small} for something called a network charge.
    [billing neutral]
    When is my bill due this month? | Can I move my billing date to the {day}?
    My bill was {amount} this month, a bit higher because of the phone installment.
    I'd like a copy of my {month} bill. | Paid my bill by card on the website.
    Is there a way to get the bill by email only?
    [billing positive]
    The bill was clear and exactly what I expected.
    Got my {small} credit back on the bill without any hassle.
    Setting up AutoPay on the website took two minutes.
    Love that the bill breaks down every charge.
    The refund for the double charge showed up in {days} days.
    Paying the bill by text message is really convenient.
    [network_coverage negative]
    No signal at all in my apartment in {city}.
    Calls keep dropping on my commute.
    Data is painfully slow downtown, barely one bar.
    The 5G icon shows but pages won't load.
    The coverage map says excellent for my zip code, in reality zero bars.
    Lost service for {hours} hours yesterday with no outage notice.
    I can't make calls from my office in {city}, I have to go outside.
    Network outage again in {city}, third time this month.
    Mobile data cuts out every evening around 7pm.
    [network_coverage neutral]
    Is 5G available in my part of {city} yet?
    Coverage is fine at home, a bit weak in the parking garage.
    Signal is ok most of the time.
    Is there planned network maintenance near {city} this week?
    Data speed was average in {city}, about what I expected.
    [network_coverage positive]
    Signal is strong everywhere I go in {city}.
    Streaming on 5G in the subway, impressive.
    Coverage on my road trip was solid the whole way.
    Haven't had a single dropped call since switching.
    Data speeds in {city} are great.
    Full bars even in the basement at work, the network is really good.
    [store_visit negative]
    Waited {minutes} minutes at the {city} store and left without being helped.
    The store in {city} had one person working on a Saturday.
    Store staff couldn't transfer my number and told me to call instead.
    Went to the store to fix my SIM and they said come back tomorrow.
    The {city} store closed early with no notice on the door.
    The sales rep in the store kept pushing {plan} when I only wanted a case.
    Booked a store appointment online and nobody at the store knew about it.
    [store_visit neutral]
    Visited the {city} store to pick up a SIM card.
    Booked a store appointment online and was seen on time.
    The store was busy but ok.
    What are the store hours on Sunday in {city}?
    Picked up my {phone} in the store after ordering online.
    [store_visit positive]
    The staff at the {city} store set up my new {phone} and moved all my photos.
    In and out of the store in {minutes} minutes.
    {agent} at the store was super patient with my mum.
    Great store experience, they found a screen protector that actually fits.
    The team at the {city} store sorted my eSIM while I waited.
    [delivery negative]
    My {phone} was supposed to arrive on {weekday} and it's still not here.
    The tracking hasn't updated in {days} days.
    The courier left the box at the wrong address.
    The package arrived with the charger missing.
    Ordered a new {phone} online and got a SIM card only.
    The delivery window was 8 to 8 and no one came.
    Order {order} shows delivered but there is no parcel.
    [delivery neutral]
    Where can I find the tracking number for order {order}?
    Can I change the delivery address for my order?
    The phone arrived on {weekday}, haven't opened it yet.
    Delivery took {days} days, which is what the website said.
    [delivery positive]
    Ordered my {phone} on {weekday} and it arrived the next morning.
    Delivery was fast and the tracking emails were spot on.
    The box came well packed and the phone was activated by the time it arrived.
    Next-day delivery actually meant next day, nice.
    [plan_change negative]
    Switching to {plan} took {n} calls.
    Downgraded my plan in the app and was still billed for the old one.
    I was told the plan change would be free, then got a {small} fee.
    The website wouldn't let me change plans, it kept erroring at the last step.
    Changing plans renewed my contract without telling me.
    Asked to move to {plan} in chat and it still hasn't gone through after {days} days.
    [plan_change neutral]
    Can I move to {plan} in the middle of the billing cycle?
    What's the difference between Unlimited Plus and Unlimited Max?
    Thinking of switching to {plan} next month.
    Changed my plan on the website today.
    Does changing plans affect my phone installment?
    [plan_change positive]
    Upgraded to {plan} in the app in two taps.
    The chat agent moved me to a cheaper plan and saved me {small} a month.
    Changing my plan online was easy and took effect right away.
    Switched to {plan} in the store, done in five minutes.
    [agent_helpful negative]
    The agent I spoke to was rude and hung up on me.
    The chat agent kept pasting the same script.
    Transferred {n} times and had to repeat my story each time.
    The rep promised a callback that never happened.
    The agent had no idea what I was talking about.
    [agent_helpful neutral]
    Spoke to an agent about my account today.
    The agent said it would take 24 hours to update.
    The chat agent gave me a ticket number, waiting to hear back.
    Called support about my voicemail settings.
    [agent_helpful positive]
    {agent} on the phone sorted out my issue in minutes.
    The chat agent was friendly and actually fixed it.
    {agent} went above and beyond and called me back the next day to check.
    Super helpful support rep, explained everything clearly.
    The agent credited my account without me even asking.
    {agent} in customer care was patient, kind and knew her stuff.
    Best customer service call I've had in years, thank you {agent}.
    [app_general negative]
    The app crashes every time I open the usage screen.
    The app is so slow since the last update.
    The app logs me out every other day.
    I can't see my data usage in the app anymore.
    The new app design hides everything useful.
    App notifications arrive hours late.
    [app_general neutral]
    It would be nice if the app showed roaming usage.
    I mostly use the app to check my data. | Is there an iPad version of the app?
    The app works, nothing special.
    [app_general positive]
    The app is clean and easy to use. | Love the usage widget in the app.
    Paying in the app is super quick. | Dark mode in the app, finally!
    The new app home screen shows exactly what I need.
    [price negative]
    Way too expensive for what you get.
    The price went up {small} a month and the service got worse.
    Competitors offer the same for half the price.
    {amount} a month for {plan} is a joke.
    The promo price ended and nobody warned me.
    [price neutral]
    Is there a student discount? | How much is {plan} after the promo?
    The price is about what others charge.
    Are there any deals on the {phone} this month?
    [price positive]
    Great value for {plan}.
    The cheapest plan I could find with this coverage.
    The family discount makes it really affordable.
    Honestly the price is fair for unlimited data.
    """
)

TOPICS: tuple[str, ...] = tuple(_CORE)

_FOLLOW_UPS = _phrasebook(
    """
    [password_reset_app negative]
    Ended up calling {contact} and {waited|sat} {minutes} minutes on hold.
    Had to {phone|call|ring} {contact} just to get back into my account.
    Had to call, the agent reset it for me in {two|five} minutes, so why can't the app do that?
    Tried {on the website|on my laptop} instead and it worked, so it's clearly the app.
    {Uninstalled and reinstalled|Deleted and reinstalled|Updated} the app, same thing.
    Checked {spam|my blocked numbers|my messages}, nothing.
    Wasted my {lunch break|whole evening|morning} on this.
    {Chat|The chat bot} just told me to try again later.
    Called {contact} {twice|three times} this week because of it.
    My {device} gets every other text just fine.
    It worked fine on {old_version} before the update.
    Rang the helpline and they had to {do it manually|reset it from their side}.
    [password_reset_app neutral]
    Just letting you know. | Using the app on my {phone}. | Not a big deal.
    Maybe {add an email option|let us use email}?
    [password_reset_app positive]
    Took less than a minute. | Way easier than calling. | No need to phone anyone.
    {Much|Way} better than {last time|before}.
    [billing negative]
    Spent {minutes} minutes in {chat|the chat|a call} to get nowhere.
    The agent said it would be credited, it wasn't.
    I want {this|my money} refunded. | {Second|Third} month in a row.
    Called {contact} and was told to wait for the next bill.
    Nobody {explains|can explain} the {extra charge|new fee}.
    [billing neutral]
    I'm on {plan}. | Just want to understand the {charges|bill}. | No rush.
    [billing positive]
    No phone call needed. | Exactly how {billing|a bill} should work.
    Thanks to the {billing team|team}. | {Simple|Easy}.
    [network_coverage negative]
    Wi-Fi calling is the only thing that works.
    Restarted the phone and reset network settings, nothing.
    My {phone} works fine on my {partner's|friend's|sister's} network.
    {Support|The agent|Chat} just said there's maintenance in the area.
    Had a dropped call in the middle of a {job interview|meeting|call with my doctor}.
    [network_coverage neutral]
    I'm on my {phone}. | Mostly around {city}. | Just curious.
    [network_coverage positive]
    {Much|So much} better than my old carrier. | Even in the {elevator|subway|basement}.
    Love it.
    [store_visit negative]
    Nobody even said hello. | I took {a day|the afternoon} off work for this.
    Ended up doing it over the phone anyway.
    [store_visit neutral]
    It was a {weekday|Saturday} {afternoon|morning}. | Parking was easy.
    I was there around {noon|5pm|10am}.
    [store_visit positive]
    {Friendly|Polite} and quick. | Will go back to that store.
    {agent} really knew the {phones|plans}.
    [delivery negative]
    {Chat|The website} keeps telling me to wait another {days} days.
    I took the day off to wait for it. | I need this phone for {work|my trip}.
    [delivery neutral]
    Ordered on the {website|app}. | No rush. | It's a {gift|spare}.
    [delivery positive]
    The tracking {texts|emails} were helpful. | {Courier|The driver} was polite.
    Perfect timing.
    [plan_change negative]
    Every agent told me something different. | Nobody mentioned any fee.
    I'm now paying {more|{small} more} than before.
    [plan_change neutral]
    I use about {data} a month. | Currently on {plan}. | Just comparing options.
    [plan_change positive]
    No fees, no fuss. | The new plan suits me better. | Showed up on the next bill.
    [agent_helpful negative]
    Waited {minutes} minutes to reach someone.
    Had to start over in the chat. | My issue is still not {fixed|sorted}.
    [agent_helpful neutral]
    It was about my account. | {The call|It} took about {minutes} minutes. | We'll see.
    [agent_helpful positive]
    Give that agent a raise. | That's how support should be.
    Problem solved on the first {call|try}. | The wait was short too.
    [app_general negative]
    I'm using my {device}. | The old version was better.
    {Reinstalling|Clearing the cache} doesn't help.
    [app_general neutral]
    Using my {phone}. | Just a suggestion. | App version {version}.
    [app_general positive]
    {Great|Nice} job to the app team. | I use it every {day|week}.
    Much better than before.
    [price negative]
    Thinking about switching {carriers|to another provider}.
    Loyalty means nothing here. | I've been a customer for {years} years.
    [price neutral]
    I'm on {plan}. | Just comparing. | Asking for my {family|mum|partner}.
    [price positive]
    Worth every {cent|penny}. | Recommended it to my {brother|friends}. | Happy to stay.
    """
)

# Around the core: how people open and close, and what agents write (notes by topic).
_STYLE = _phrasebook(
    """
    [opener negative]
    Not happy. | Really frustrated. | Ugh. | Seriously, | Honestly, | Worst experience.
    I've been with Northwind for {years} years and this is a first.
    Hi, | Complaint: | So annoying.
    [opener neutral]
    Quick question: | Just a note, | Hello, | Hi there, | FYI | Feedback:
    For what it's worth,
    [opener positive]
    Wow! | Great experience. | Just wanted to say thanks. | Credit where it's due:
    Happy customer here. | Impressed, honestly. | Hi,
    [ending negative]
    Fix it please. | Not impressed. | Thinking about switching. | This is ridiculous.
    Very disappointing. | Sort it out Northwind. | Unacceptable. | Terrible service.
    I expect better.
    [ending neutral]
    Thanks. | Let me know. | That's all. | Cheers | Thanks in advance.
    [ending positive]
    Thanks! | Keep it up. | Would recommend. | 10/10 | Five stars from me.
    Really appreciated it. | Made my day.
    [note password_reset_app]
    pw reset fails in app {version}, SMS code not received
    can't log in to app, OTP never arrives after update
    locked out of app, reset code not delivered by text
    [note billing]
    double charge of {amount} on last bill | late fee dispute {small} | refund status
    [note network_coverage]
    no signal at home in {city} | dropped calls | slow data downtown
    [note store_visit]
    follow-up from {city} store visit | SIM swap not done in store
    [note delivery]
    order {order} not delivered | parcel to wrong address | tracking stuck
    [note plan_change]
    wants to move to {plan} | plan change fee question | downgrade not applied
    [note agent_helpful]
    callback as promised | follow-up on earlier ticket
    [note app_general]
    app crashing on usage screen | app keeps logging out
    [note price]
    price increase complaint | asking for a discount on {plan}
    [mood negative]
    Cust very frustrated. | Cust upset, 2nd contact this week. | Cust wants to cancel.
    [mood neutral]
    Cust calm. | No further action. | Info given.
    [mood positive]
    Cust happy with fix. | Cust thanked us. | Resolved first contact, cust pleased.
    [action any]
    Escalated, ref {ticket}. | Advised to use the website for now. | Credit applied.
    Fixed manually and verified by email. | Ticket {ticket} opened. | Explained next steps.
    """
)
_NEW_SENTENCE = frozenset((". ", "! ", "... "))
_CONNECTORS = {
    "negative": (". ", ". ", " and ", ", ", " - ", "... ", ". Also "),
    "neutral": (". ", ". ", " and ", ", ", ". Also "),
    "positive": (". ", ". ", " and ", "! ", ", ", " - "),
}

_WORDS = ("two", "three", "four", "five", "2", "3", "4", "5", "like 4", "about 6")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_CONTACTS = ("customer service", "support", "the contact center", "the helpline", "customer care")


def _money(rng: random.Random, low: int, high: int) -> str:
    dollars = rng.randint(low, high)
    return f"${dollars}" if rng.random() < 0.6 else f"${dollars}.{rng.choice((99, 50, 49, 0)):02d}"


def _device(rng: random.Random) -> str:
    name = rng.choice(PHONES).name
    if name.startswith("iPhone"):
        return f"{name} on iOS {rng.choice(IOS_VERSIONS)}"
    return f"{name} on Android {rng.choice(('15', '16'))}"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "plan": lambda rng: rng.choice(PLANS).name,
    "phone": lambda rng: rng.choice(PHONES).name,
    "city": lambda rng: rng.choice(PLACES).city,
    "agent": lambda rng: rng.choice(FIRST_NAMES),
    "version": lambda rng: rng.choice(
        (BROKEN_RELEASE, BROKEN_RELEASE, "5.2", "v" + BROKEN_RELEASE)
    ),
    "old_version": lambda rng: OLD_RELEASE,
    "device": lambda rng: _device(rng),
    "amount": lambda rng: _money(rng, 30, 180),
    "small": lambda rng: _money(rng, 4, 35),
    "minutes": lambda rng: str(rng.randrange(10, 95, 5)),
    "hours": lambda rng: str(rng.randint(2, 14)),
    "days": lambda rng: str(rng.randint(2, 12)),
    "weeks": lambda rng: str(rng.randint(2, 7)),
    "years": lambda rng: str(rng.randint(2, 15)),
    "n": lambda rng: rng.choice(_WORDS),
    "month": lambda rng: rng.choice(_MONTHS),
    "weekday": lambda rng: rng.choice(_WEEKDAYS),
    "day": lambda rng: _ordinal(rng.randint(1, 28)),
    "order": lambda rng: f"NW-{rng.randint(100000, 999999)}",
    "ticket": lambda rng: f"INC{rng.randint(10000, 99999)}",
    "data": lambda rng: f"{rng.choice((3, 5, 8, 12, 15, 25, 40))}GB",
    "contact": lambda rng: rng.choice(_CONTACTS),
}
# {name} is a detail from _SLOTS; {a|b} picks one of the words; innermost braces first.
_SLOT = re.compile(r"\{([^{}]+)\}")
# Words that keep their capital when a comment is joined mid-sentence.
_PROPER = frozenset(
    (
        *("I", "I'm", "I've", "I'd", "I'll", "Northwind", "AutoPay", "Unlimited", "Wi-Fi", "iPad"),
        *FIRST_NAMES,
        *(place.city.split()[0] for place in PLACES),
        *(phone.name.split()[0] for phone in PHONES),
    )
)


def verbatim(rng: random.Random, topic: str, tone: str) -> str:
    """One customer comment about `topic` in `tone`, drawn from `rng`.

    Most read like survey comments or chat messages; a few are agent notes. The same
    `rng` state always gives the same text.

    >>> text = verbatim(random.Random(4), "password_reset_app", "negative")
    >>> print(text)  # doctest: +NORMALIZE_WHITESPACE
    I've been with Northwind for 10 years and this is a first. Locked out after the latest
    app update, the forgot password screen just waits for a code. Chat just told me to try
    again later.
    """
    if topic not in _CORE:
        raise InvalidInput(f"topic must be one of {', '.join(TOPICS)}; got {topic!r}")
    if tone not in TONES:
        raise InvalidInput(f"tone must be one of {', '.join(TONES)}; got {tone!r}")
    text = _agent_note(rng, topic, tone) if rng.random() < 0.08 else _comment(rng, topic, tone)
    return _roughen(rng, text, tone)


def _fill(rng: random.Random, template: str) -> str:
    def pick(match: re.Match[str]) -> str:
        inside = match.group(1)
        return rng.choice(inside.split("|")) if "|" in inside else _SLOTS[inside](rng)

    while "{" in template:
        template = _SLOT.sub(pick, template)
    return template


def _comment(rng: random.Random, topic: str, tone: str) -> str:
    # Each part is filled in before joining, so joining sees the words it may lower-case.
    text = _fill(rng, rng.choice(_CORE[topic][tone]))
    follow_ups = _FOLLOW_UPS[topic][tone]
    count = rng.choices((0, 1, 2), weights=(35, 45, 20))[0]
    for follow_up in rng.sample(follow_ups, min(count, len(follow_ups))):
        text = _join(text, rng.choice(_CONNECTORS[tone]), _fill(rng, follow_up))
    if rng.random() < 0.3:
        opener = _fill(rng, rng.choice(_STYLE["opener"][tone]))
        text = f"{opener} {text if opener[-1] in '.!' else _decapitalise(text)}"
    if rng.random() < 0.3:
        text = f"{text} {rng.choice(_STYLE['ending'][tone])}"
    return text


def _agent_note(rng: random.Random, topic: str, tone: str) -> str:
    where = rng.choice(("Cust called re", "Chat:", "Cust in store re", "Callback re", "Call -"))
    note = rng.choice(_STYLE["note"][topic])
    action = rng.choice(_STYLE["action"]["any"])
    return _fill(rng, f"{where} {note}. {rng.choice(_STYLE['mood'][tone])} {action}")


def _join(first: str, connector: str, second: str) -> str:
    """`first` + `connector` + `second`, with the case and punctuation a person would use."""
    if first.endswith("?"):
        return f"{first} {second}"
    if connector not in _NEW_SENTENCE:
        second = _decapitalise(second)
    return first.rstrip(".!") + connector + second


def _decapitalise(text: str) -> str:
    first_word = text.split(" ", 1)[0].rstrip(",.")
    if first_word in _PROPER or first_word.isupper() or first_word[1:] != first_word[1:].lower():
        return text
    return text[0].lower() + text[1:]


def _roughen(rng: random.Random, text: str, tone: str) -> str:
    """Typed in a hurry: sometimes all lower case, no final stop, a typo or text-speak."""
    if rng.random() < 0.12:
        text = text.lower()
    if rng.random() < 0.12:
        text = text.rstrip(".")
    if rng.random() < 0.1:
        text = _typo(rng, text)
    if rng.random() < 0.06:
        text = text.replace(" you ", " u ").replace("please", "pls").replace(" and ", " & ")
    if tone == "negative" and rng.random() < 0.05:
        text = text.rstrip(".!") + rng.choice(("!!", "!!!", "?!"))
    return text


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    at = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:  # two letters swapped
        words[i] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    else:  # a letter dropped
        words[i] = word[:at] + word[at + 1 :]
    return " ".join(words)


# How often each topic comes up, and how its comments lean (positive, neutral, negative);
# the password-reset share is the caller's, to plant a problem of any size.
_RESET_TONES = (10, 15, 75)
_MIX = {
    "billing": (18, (20, 35, 45)),
    "network_coverage": (15, (30, 25, 45)),
    "store_visit": (10, (45, 25, 30)),
    "delivery": (8, (35, 25, 40)),
    "plan_change": (10, (35, 35, 30)),
    "agent_helpful": (15, (65, 15, 20)),
    "app_general": (12, (40, 30, 30)),
    "price": (12, (15, 25, 60)),
}


def sample_verbatims(
    n: int, *, seed: int = 0, password_reset_share: float = 0.1
) -> list[tuple[str, str, str]]:
    """`n` (topic, tone, text) comments in a realistic mix of topics and tones.

    `password_reset_share` of them are about the app's password reset (mostly negative:
    the planted problem); the other topics share the rest.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidInput(f"n must be a whole number >= 0, got {n!r}")
    if not 0 <= password_reset_share <= 1:
        raise InvalidInput(
            f"password_reset_share must be from 0 to 1, got {password_reset_share!r}"
        )
    rest = sum(share for share, _ in _MIX.values())
    topics = ("password_reset_app", *_MIX)
    weights = (
        password_reset_share,
        *(share / rest * (1 - password_reset_share) for share, _ in _MIX.values()),
    )
    tones = {"password_reset_app": _RESET_TONES} | {t: lean for t, (_, lean) in _MIX.items()}
    rng = random.Random(f"northwind/verbatims/{seed}")
    out = []
    for topic in rng.choices(topics, weights, k=n):
        tone = rng.choices(TONES, tones[topic])[0]
        out.append((topic, tone, verbatim(rng, topic, tone)))
    return out
