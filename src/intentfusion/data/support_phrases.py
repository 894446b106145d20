"""Phrase tables of the support generator: markers, templates and slot fillers per language."""

from __future__ import annotations

import re

# --------------------------------------------------------------------------------------------------
# Marker phrases (the only places urgency / sentiment cues appear in a text)
# --------------------------------------------------------------------------------------------------
URGENCY_MARKERS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "high": (
            "This is urgent.",
            "I need this sorted out asap.",
            "Please deal with this right now.",
            "I need an answer immediately.",
            "It's an emergency, please help today.",
            "Please prioritize this, it can't wait.",
        ),
        "low": (
            "No rush.",
            "Whenever you can is fine.",
            "It's not urgent at all.",
            "Take your time with this.",
            "Any time this week works for me.",
            "No hurry, just letting you know.",
        ),
    },
    "es": {
        "high": (
            "Es urgente.",
            "Lo necesito resuelto cuanto antes.",
            "Por favor, atiéndanlo ahora mismo.",
            "Necesito una respuesta de inmediato.",
            "Es una emergencia, necesito ayuda hoy.",
            "Esto no puede esperar, es prioritario.",
        ),
        "low": (
            "Sin prisa.",
            "Cuando puedan, no pasa nada.",
            "No es nada urgente.",
            "Tómense su tiempo.",
            "Cualquier día de esta semana me viene bien.",
            "No corre prisa, solo aviso.",
        ),
    },
    "de": {
        "high": (
            "Das ist dringend.",
            "Ich brauche das so schnell wie möglich.",
            "Bitte kümmern Sie sich sofort darum.",
            "Ich brauche umgehend eine Antwort.",
            "Es ist ein Notfall, ich brauche heute noch Hilfe.",
            "Das kann nicht warten, bitte mit Priorität behandeln.",
        ),
        "low": (
            "Keine Eile.",
            "Wann immer Sie Zeit haben.",
            "Es ist überhaupt nicht dringend.",
            "Lassen Sie sich ruhig Zeit.",
            "Irgendwann diese Woche reicht völlig.",
            "Es eilt nicht, nur zur Info.",
        ),
    },
    "fr": {
        "high": (
            "C'est urgent.",
            "J'ai besoin que ce soit réglé au plus vite.",
            "Merci de vous en occuper tout de suite.",
            "J'ai besoin d'une réponse immédiatement.",
            "C'est une urgence, j'ai besoin d'aide aujourd'hui.",
            "Ça ne peut pas attendre, c'est prioritaire.",
        ),
        "low": (
            "Rien ne presse.",
            "Quand vous pourrez, pas de souci.",
            "Ce n'est pas du tout urgent.",
            "Prenez votre temps.",
            "N'importe quand cette semaine me convient.",
            "Pas pressé, c'est juste pour info.",
        ),
    },
}

SENTIMENT_MARKERS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "calm": (
            "I appreciate your help.",
            "Thank you for your time.",
            "Hope you're having a good day.",
            "Thanks in advance for looking into it.",
            "I'm sure it's just a small mix-up.",
            "I really appreciate the support.",
        ),
        "frustrated": (
            "This is the second time I ask about this.",
            "I'm still waiting for a reply.",
            "I already contacted you twice about this.",
            "Honestly, this is getting frustrating.",
            "Nobody answered my last message.",
            "I've been going back and forth on this for days.",
        ),
        "angry": (
            "This is unacceptable.",
            "Worst service ever.",
            "I'm absolutely furious.",
            "This is a complete joke.",
            "You people are incompetent.",
            "I'm sick of being ignored!",
        ),
    },
    "es": {
        "calm": (
            "Agradezco mucho su ayuda.",
            "Gracias por su tiempo.",
            "Espero que tengan un buen día.",
            "Gracias de antemano por revisarlo.",
            "Seguro que es un pequeño malentendido.",
            "Valoro mucho su atención.",
        ),
        "frustrated": (
            "Es la segunda vez que lo pregunto.",
            "Sigo esperando una respuesta.",
            "Ya les escribí dos veces por esto.",
            "La verdad, esto ya me está frustrando.",
            "Nadie respondió a mi último mensaje.",
            "Llevo días dando vueltas con esto.",
        ),
        "angry": (
            "Esto es inaceptable.",
            "El peor servicio que he visto.",
            "Estoy absolutamente furioso.",
            "Esto es una tomadura de pelo.",
            "Son unos incompetentes.",
            "¡Estoy harto de que me ignoren!",
        ),
    },
    "de": {
        "calm": (
            "Vielen Dank für Ihre Hilfe.",
            "Danke für Ihre Zeit.",
            "Ich wünsche Ihnen einen schönen Tag.",
            "Danke schon mal im Voraus.",
            "Bestimmt ist es nur ein kleines Versehen.",
            "Ich schätze Ihre Unterstützung sehr.",
        ),
        "frustrated": (
            "Ich frage jetzt schon zum zweiten Mal.",
            "Ich warte immer noch auf eine Antwort.",
            "Ich habe mich deswegen schon zweimal gemeldet.",
            "Ehrlich gesagt nervt mich das langsam.",
            "Auf meine letzte Nachricht hat niemand geantwortet.",
            "Ich gehe damit schon seit Tagen hin und her.",
        ),
        "angry": (
            "Das ist inakzeptabel.",
            "Der schlechteste Service überhaupt.",
            "Ich bin absolut wütend.",
            "Das ist doch ein schlechter Witz.",
            "Sie sind völlig inkompetent.",
            "Ich habe es satt, ignoriert zu werden!",
        ),
    },
    "fr": {
        "calm": (
            "Merci beaucoup pour votre aide.",
            "Merci pour votre temps.",
            "Je vous souhaite une bonne journée.",
            "Merci d'avance de regarder ça.",
            "Je suis sûr que c'est juste un petit malentendu.",
            "J'apprécie vraiment votre soutien.",
        ),
        "frustrated": (
            "C'est la deuxième fois que je pose la question.",
            "J'attends toujours une réponse.",
            "Je vous ai déjà contactés deux fois à ce sujet.",
            "Franchement, ça devient frustrant.",
            "Personne n'a répondu à mon dernier message.",
            "Ça fait des jours que je tourne en rond avec ça.",
        ),
        "angry": (
            "C'est inacceptable.",
            "Le pire service qui soit.",
            "Je suis absolument furieux.",
            "C'est une vraie blague.",
            "Vous êtes des incompétents.",
            "J'en ai marre d'être ignoré !",
        ),
    },
}

# --------------------------------------------------------------------------------------------------
# Required details
# --------------------------------------------------------------------------------------------------
DEVICES: tuple[str, ...] = (
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
PLANS: tuple[str, ...] = ("Premium", "Family", "Business", "Starter", "Unlimited")

DETAIL_REQUIRED: dict[str, str | None] = {
    "refund_request": "order_number",
    "billing_issue": "amount",
    "account_access": "email",
    "technical_problem": "device",
    "order_status": "order_number",
    "cancellation": "plan",
    "shipping_delay": "order_number",
    "general_question": None,
}
DETAIL_PATTERNS: dict[str, re.Pattern[str]] = {
    "order_number": re.compile(r"#\d{5}\b"),
    "amount": re.compile(r"[$€£]\s?\d+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?\s?(?:€|\$|£|EUR|USD)"),
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "device": re.compile(r"(?<!\w)(?:" + "|".join(re.escape(d) for d in DEVICES) + r")(?!\w)"),
    "plan": re.compile(r"\b(?:" + "|".join(PLANS) + r")\b"),
}

# --------------------------------------------------------------------------------------------------
# Core templates: CORE_TEMPLATES[lang][intent] = {"complete": [...], "missing": [...]}
# "complete" templates contain the intent's required detail slot, "missing" ones do not.
# general_question needs no detail: all of its templates are "complete".
# --------------------------------------------------------------------------------------------------
CORE_TEMPLATES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "en": {
        "refund_request": {
            "complete": (
                "I'd like a refund for order {order}.",
                "Please refund my order {order}, the item arrived damaged.",
                "I returned {product} from order {order} and haven't received my money back.",
                "Can I get my money back for order {order}? I was charged {amount}.",
                "Order {order} was not what I expected, I want to return it and get a refund.",
            ),
            "missing": (
                "I'd like a refund for {product} I bought last week.",
                "How do I get my money back? I bought {product} and it stopped working after two days.",
                "I returned {product} {date} but the refund never showed up.",
                "I want to return {product} and get a refund of {amount}.",
                "Can you refund me? The item I received is broken.",
            ),
        },
        "billing_issue": {
            "complete": (
                "I was charged {amount} twice this month.",
                "My invoice shows {amount} but my plan should be cheaper.",
                "There is a charge of {amount} on {payment} that I don't recognize.",
                "Why was I billed {amount} {date}?",
                "You took {amount} from my account after I already paid.",
            ),
            "missing": (
                "I was charged twice this month.",
                "My latest invoice looks wrong.",
                "There is a charge on {payment} that I don't recognize.",
                "Why was I billed {date}? I thought my subscription was paused.",
                "The amount on my bill doesn't match my plan.",
            ),
        },
        "account_access": {
            "complete": (
                "I can't log in to my account, the email is {email}.",
                "My account {email} is locked after too many password attempts.",
                "The password reset link never arrives at {email}.",
                "I'm unable to sign in with {email}, it says the account doesn't exist.",
                "Please help me recover access to {email}, I changed my phone number.",
            ),
            "missing": (
                "I can't log in to my account.",
                "My account got locked after too many password attempts.",
                "The password reset email never arrives.",
                "I'm unable to sign in, it says my account doesn't exist.",
                "I lost access to my account after changing my phone number.",
            ),
        },
        "technical_problem": {
            "complete": (
                "The app keeps crashing on my {device}.",
                "On my {device} the app {issue}.",
                "Since the last update, the app {issue} on my {device}.",
                "I can't play any videos on my {device}, the screen just goes black.",
                "Your app {issue} whenever I open it on my {device}.",
            ),
            "missing": (
                "The app keeps crashing.",
                "Since the last update, the app {issue}.",
                "I can't play any videos, the screen just goes black.",
                "The website {issue} when I try to check out.",
                "Notifications stopped working and the app {issue}.",
            ),
        },
        "order_status": {
            "complete": (
                "Where is my order {order}?",
                "Can you tell me the status of order {order}?",
                "I placed order {order} {date} and haven't heard anything since.",
                "Has order {order} shipped yet?",
                "What's happening with my order {order}? I ordered {product}.",
            ),
            "missing": (
                "Where is my order?",
                "Can you tell me the status of my order? I ordered {product}.",
                "I placed an order {date} and haven't heard anything since.",
                "Has my package shipped yet?",
                "I'd like to know when you will send {product}.",
            ),
        },
        "cancellation": {
            "complete": (
                "I want to cancel my {plan} plan.",
                "Please cancel my {plan} subscription at the end of this month.",
                "How do I cancel the {plan} plan before the next renewal?",
                "I'd like to end my {plan} membership.",
                "Cancel my {plan} plan, I don't use it anymore.",
            ),
            "missing": (
                "I want to cancel my subscription.",
                "Please cancel my membership at the end of this month.",
                "How do I cancel before the next renewal?",
                "I'd like to close my subscription, I don't use it anymore.",
                "Can you stop my plan from renewing?",
            ),
        },
        "shipping_delay": {
            "complete": (
                "My package for order {order} is {days} late.",
                "Order {order} should have arrived {date} but it's still not here.",
                "The tracking for order {order} hasn't moved in {days}.",
                "Delivery of order {order} keeps getting postponed.",
                "The delivery of {product} (order {order}) is delayed again.",
            ),
            "missing": (
                "My package is {days} late.",
                "My delivery should have arrived {date} but it's still not here.",
                "The tracking hasn't moved in {days}.",
                "Delivery of {product} keeps getting postponed.",
                "The courier missed the delivery window again and my parcel is delayed.",
            ),
        },
        "general_question": {
            "complete": (
                "Do you ship to {country}?",
                "What payment methods do you accept?",
                "Do you have {product} in other colors?",
                "What are your customer service hours?",
                "Do you offer gift cards?",
                "How long is the warranty on {product}?",
                "Is there a student discount?",
                "Do you have a store in {city}?",
            ),
            "missing": (),
        },
    },
    "es": {
        "refund_request": {
            "complete": (
                "Quiero un reembolso del pedido {order}.",
                "Por favor, reembólsenme el pedido {order}, el artículo llegó dañado.",
                "Devolví {product} del pedido {order} y todavía no me han devuelto el dinero.",
                "¿Pueden devolverme el dinero del pedido {order}? Me cobraron {amount}.",
                "El pedido {order} no era lo que esperaba, quiero devolverlo y que me reembolsen.",
            ),
            "missing": (
                "Quiero un reembolso por {product} que compré la semana pasada.",
                "¿Cómo recupero mi dinero? Compré {product} y dejó de funcionar a los dos días.",
                "Devolví {product} {date} pero el reembolso nunca llegó.",
                "Quiero devolver {product} y que me reembolsen {amount}.",
                "¿Me pueden hacer un reembolso? El artículo que recibí está roto.",
            ),
        },
        "billing_issue": {
            "complete": (
                "Me cobraron {amount} dos veces este mes.",
                "Mi factura muestra {amount}, pero mi plan debería ser más barato.",
                "Hay un cargo de {amount} en {payment} que no reconozco.",
                "¿Por qué me cobraron {amount} {date}?",
                "Me retiraron {amount} de la cuenta aunque ya había pagado.",
            ),
            "missing": (
                "Me cobraron dos veces este mes.",
                "Mi última factura parece incorrecta.",
                "Hay un cargo en {payment} que no reconozco.",
                "¿Por qué me cobraron {date}? Pensaba que mi suscripción estaba pausada.",
                "El importe de mi factura no coincide con mi plan.",
            ),
        },
        "account_access": {
            "complete": (
                "No puedo iniciar sesión en mi cuenta, el correo es {email}.",
                "Mi cuenta {email} está bloqueada tras demasiados intentos de contraseña.",
                "El enlace para restablecer la contraseña nunca llega a {email}.",
                "No consigo entrar con {email}, dice que la cuenta no existe.",
                "Ayúdenme a recuperar el acceso a {email}, cambié de número de teléfono.",
            ),
            "missing": (
                "No puedo iniciar sesión en mi cuenta.",
                "Mi cuenta se bloqueó tras demasiados intentos de contraseña.",
                "El correo para restablecer la contraseña nunca llega.",
                "No consigo entrar, dice que mi cuenta no existe.",
                "Perdí el acceso a mi cuenta después de cambiar de número de teléfono.",
            ),
        },
        "technical_problem": {
            "complete": (
                "La aplicación se cierra sola en mi {device}.",
                "En mi {device} la aplicación {issue}.",
                "Desde la última actualización, la aplicación {issue} en mi {device}.",
                "No puedo reproducir vídeos en mi {device}, la pantalla se queda negra.",
                "Su aplicación {issue} cada vez que la uso en mi {device}.",
            ),
            "missing": (
                "La aplicación se cierra sola todo el rato.",
                "Desde la última actualización, la aplicación {issue}.",
                "No puedo reproducir vídeos, la pantalla se queda negra.",
                "La web {issue} cuando intento pagar.",
                "Las notificaciones dejaron de funcionar y la aplicación {issue}.",
            ),
        },
        "order_status": {
            "complete": (
                "¿Dónde está mi pedido {order}?",
                "¿Me pueden decir el estado del pedido {order}?",
                "Hice el pedido {order} {date} y no he sabido nada desde entonces.",
                "¿Ya se envió el pedido {order}?",
                "¿Qué pasa con mi pedido {order}? Compré {product}.",
            ),
            "missing": (
                "¿Dónde está mi pedido?",
                "¿Me pueden decir el estado de mi pedido? Compré {product}.",
                "Hice un pedido {date} y no he sabido nada desde entonces.",
                "¿Ya se envió mi paquete?",
                "Quisiera saber cuándo van a enviar {product}.",
            ),
        },
        "cancellation": {
            "complete": (
                "Quiero cancelar mi plan {plan}.",
                "Por favor, cancelen mi suscripción {plan} a final de mes.",
                "¿Cómo cancelo el plan {plan} antes de la próxima renovación?",
                "Me gustaría dar de baja mi membresía {plan}.",
                "Cancelen mi plan {plan}, ya no lo uso.",
            ),
            "missing": (
                "Quiero cancelar mi suscripción.",
                "Por favor, cancelen mi membresía a final de mes.",
                "¿Cómo cancelo antes de la próxima renovación?",
                "Me gustaría darme de baja, ya no uso el servicio.",
                "¿Pueden evitar que mi plan se renueve?",
            ),
        },
        "shipping_delay": {
            "complete": (
                "Mi paquete del pedido {order} lleva {days} de retraso.",
                "El pedido {order} debía llegar {date} y aún no ha llegado.",
                "El seguimiento del pedido {order} no se mueve desde hace {days}.",
                "La entrega del pedido {order} se sigue aplazando.",
                "El envío de {product} (pedido {order}) vuelve a estar retrasado.",
            ),
            "missing": (
                "Mi paquete lleva {days} de retraso.",
                "Mi entrega debía llegar {date} y aún no ha llegado.",
                "El seguimiento no se mueve desde hace {days}.",
                "La entrega de {product} se sigue aplazando.",
                "El repartidor volvió a fallar la franja de entrega y mi paquete va con retraso.",
            ),
        },
        "general_question": {
            "complete": (
                "¿Hacen envíos a {country}?",
                "¿Qué métodos de pago aceptan?",
                "¿Tienen {product} en otros colores?",
                "¿Cuál es el horario de atención al cliente?",
                "¿Ofrecen tarjetas regalo?",
                "¿Cuánto dura la garantía de {product}?",
                "¿Tienen descuento para estudiantes?",
                "¿Hay alguna tienda física en {city}?",
            ),
            "missing": (),
        },
    },
    "de": {
        "refund_request": {
            "complete": (
                "Ich möchte eine Rückerstattung für Bestellung {order}.",
                "Bitte erstatten Sie mir Bestellung {order}, der Artikel kam beschädigt an.",
                "Ich habe {product} aus Bestellung {order} zurückgeschickt, aber kein Geld zurückbekommen.",
                "Kann ich mein Geld für Bestellung {order} zurückbekommen? Mir wurden {amount} berechnet.",
                "Bestellung {order} war nicht wie erwartet, ich möchte sie zurückgeben und eine Erstattung.",
            ),
            "missing": (
                "Ich möchte eine Rückerstattung für {product} aus meinem letzten Einkauf.",
                "Wie bekomme ich mein Geld zurück? Ich habe {product} gekauft, der Artikel ist defekt.",
                "Ich habe {product} {date} zurückgeschickt, aber die Erstattung kam nie an.",
                "Ich möchte {product} zurückgeben und {amount} erstattet bekommen.",
                "Können Sie mir das Geld erstatten? Der gelieferte Artikel ist kaputt.",
            ),
        },
        "billing_issue": {
            "complete": (
                "Mir wurden diesen Monat zweimal {amount} abgebucht.",
                "Meine Rechnung zeigt {amount}, obwohl mein Tarif günstiger sein sollte.",
                "Auf {payment} ist eine Abbuchung über {amount}, die ich nicht kenne.",
                "Warum wurden mir {date} {amount} berechnet?",
                "Sie haben {amount} abgebucht, obwohl ich schon bezahlt hatte.",
            ),
            "missing": (
                "Mir wurde diesen Monat doppelt abgebucht.",
                "Meine letzte Rechnung scheint falsch zu sein.",
                "Auf {payment} ist eine Abbuchung, die ich nicht kenne.",
                "Warum wurde mir {date} etwas berechnet? Ich dachte, mein Abo ist pausiert.",
                "Der Betrag auf meiner Rechnung passt nicht zu meinem Tarif.",
            ),
        },
        "account_access": {
            "complete": (
                "Ich kann mich nicht in mein Konto einloggen, die E-Mail ist {email}.",
                "Mein Konto {email} ist nach zu vielen Passwortversuchen gesperrt.",
                "Der Link zum Zurücksetzen des Passworts kommt bei {email} nie an.",
                "Ich kann mich mit {email} nicht anmelden, angeblich existiert das Konto nicht.",
                "Helfen Sie mir, wieder Zugriff auf {email} zu bekommen, ich habe eine neue Telefonnummer.",
            ),
            "missing": (
                "Ich kann mich nicht in mein Konto einloggen.",
                "Mein Konto wurde nach zu vielen Passwortversuchen gesperrt.",
                "Die E-Mail zum Zurücksetzen des Passworts kommt nie an.",
                "Ich kann mich nicht anmelden, angeblich existiert mein Konto nicht.",
                "Seit ich meine Telefonnummer geändert habe, komme ich nicht mehr in mein Konto.",
            ),
        },
        "technical_problem": {
            "complete": (
                "Die App stürzt auf meinem {device} ständig ab.",
                "Auf meinem {device} gibt es ein Problem: Die App {issue}.",
                "Seit dem letzten Update gibt es Probleme auf meinem {device}, die App {issue}.",
                "Ich kann auf meinem {device} keine Videos abspielen, der Bildschirm bleibt schwarz.",
                "Ihre App {issue}, sobald ich sie auf meinem {device} öffne.",
            ),
            "missing": (
                "Die App stürzt ständig ab.",
                "Seit dem letzten Update gibt es Probleme: Die App {issue}.",
                "Ich kann keine Videos abspielen, der Bildschirm bleibt schwarz.",
                "Die Webseite {issue}, wenn ich bezahlen will.",
                "Die Benachrichtigungen funktionieren nicht mehr und die App {issue}.",
            ),
        },
        "order_status": {
            "complete": (
                "Wo ist meine Bestellung {order}?",
                "Können Sie mir den Status von Bestellung {order} sagen?",
                "Ich habe Bestellung {order} {date} aufgegeben und seitdem nichts gehört.",
                "Wurde Bestellung {order} schon verschickt?",
                "Was ist mit meiner Bestellung {order} los? Ich habe {product} bestellt.",
            ),
            "missing": (
                "Wo ist meine Bestellung?",
                "Können Sie mir den Status meiner Bestellung sagen? Ich habe {product} bestellt.",
                "Ich habe {date} etwas bestellt und seitdem nichts gehört.",
                "Wurde mein Paket schon verschickt?",
                "Ich würde gern wissen, wann Sie {product} verschicken.",
            ),
        },
        "cancellation": {
            "complete": (
                "Ich möchte meinen {plan}-Tarif kündigen.",
                "Kündigen Sie bitte mein {plan}-Abo zum Monatsende.",
                "Wie kündige ich den {plan}-Tarif vor der nächsten Verlängerung?",
                "Ich möchte meine {plan}-Mitgliedschaft beenden.",
                "Kündigen Sie meinen {plan}-Tarif, ich nutze ihn nicht mehr.",
            ),
            "missing": (
                "Ich möchte mein Abo kündigen.",
                "Kündigen Sie bitte meine Mitgliedschaft zum Monatsende.",
                "Wie kündige ich vor der nächsten Verlängerung?",
                "Ich möchte mein Abonnement beenden, ich nutze es nicht mehr.",
                "Können Sie verhindern, dass sich mein Tarif verlängert?",
            ),
        },
        "shipping_delay": {
            "complete": (
                "Mein Paket zu Bestellung {order} ist schon {days} überfällig.",
                "Bestellung {order} sollte {date} ankommen, ist aber bis heute nicht da.",
                "Die Sendungsverfolgung von Bestellung {order} zeigt seit Tagen keine Bewegung.",
                "Die Lieferung von Bestellung {order} wird ständig verschoben.",
                "Die Lieferung für {product} (Bestellung {order}) verzögert sich schon wieder.",
            ),
            "missing": (
                "Mein Paket ist schon {days} überfällig.",
                "Meine Lieferung sollte {date} ankommen, ist aber bis heute nicht da.",
                "Die Sendungsverfolgung zeigt seit Tagen keine Bewegung.",
                "Die Lieferung für {product} wird ständig verschoben.",
                "Der Kurier hat das Lieferfenster wieder verpasst und mein Paket verspätet sich.",
            ),
        },
        "general_question": {
            "complete": (
                "Liefern Sie auch nach {country}?",
                "Welche Zahlungsmethoden akzeptieren Sie?",
                "Gibt es {product} auch in anderen Farben?",
                "Wann ist Ihr Kundenservice erreichbar?",
                "Bieten Sie Geschenkgutscheine an?",
                "Wie lange gilt die Garantie für {product}?",
                "Gibt es einen Studentenrabatt?",
                "Haben Sie ein Geschäft in {city}?",
            ),
            "missing": (),
        },
    },
    "fr": {
        "refund_request": {
            "complete": (
                "Je voudrais un remboursement pour la commande {order}.",
                "Merci de rembourser ma commande {order}, l'article est arrivé abîmé.",
                "J'ai renvoyé {product} de la commande {order} et je n'ai pas encore été remboursé.",
                "Puis-je être remboursé pour la commande {order} ? On m'a prélevé {amount}.",
                "La commande {order} ne correspond pas à ce que j'attendais, je veux la renvoyer.",
            ),
            "missing": (
                "Je voudrais me faire rembourser {product} de ma dernière commande.",
                "Comment récupérer mon argent ? J'ai acheté {product} et l'article ne marche plus.",
                "J'ai renvoyé {product} {date} mais le remboursement n'est jamais arrivé.",
                "Je veux renvoyer {product} et être remboursé de {amount}.",
                "Pouvez-vous me rembourser ? L'article reçu est cassé.",
            ),
        },
        "billing_issue": {
            "complete": (
                "On m'a prélevé {amount} deux fois ce mois-ci.",
                "Ma facture indique {amount} alors que mon forfait devrait coûter moins cher.",
                "Il y a un prélèvement de {amount} sur {payment} que je ne reconnais pas.",
                "Pourquoi m'a-t-on facturé {amount} {date} ?",
                "Vous avez prélevé {amount} alors que j'avais déjà payé.",
            ),
            "missing": (
                "On m'a prélevé deux fois ce mois-ci.",
                "Ma dernière facture semble incorrecte.",
                "Il y a un prélèvement sur {payment} que je ne reconnais pas.",
                "Pourquoi m'a-t-on facturé {date} ? Je pensais que mon abonnement était en pause.",
                "Le montant de ma facture ne correspond pas à mon forfait.",
            ),
        },
        "account_access": {
            "complete": (
                "Je n'arrive pas à me connecter à mon compte, l'adresse e-mail est {email}.",
                "Mon compte {email} est bloqué après trop de tentatives de mot de passe.",
                "Le lien de réinitialisation du mot de passe n'arrive jamais sur {email}.",
                "Impossible de me connecter avec {email}, on me dit que le compte n'existe pas.",
                "Aidez-moi à récupérer l'accès à {email}, j'ai changé de numéro de téléphone.",
            ),
            "missing": (
                "Je n'arrive pas à me connecter à mon compte.",
                "Mon compte est bloqué après trop de tentatives de mot de passe.",
                "L'e-mail de réinitialisation du mot de passe n'arrive jamais.",
                "Impossible de me connecter, on me dit que mon compte n'existe pas.",
                "J'ai perdu l'accès à mon compte après avoir changé de numéro de téléphone.",
            ),
        },
        "technical_problem": {
            "complete": (
                "L'application plante sans arrêt sur mon {device}.",
                "Sur mon {device}, l'application {issue}.",
                "Depuis la dernière mise à jour, l'application {issue} sur mon {device}.",
                "Je ne peux lire aucune vidéo sur mon {device}, l'écran reste noir.",
                "Votre application {issue} dès que je l'ouvre sur mon {device}.",
            ),
            "missing": (
                "L'application plante sans arrêt.",
                "Depuis la dernière mise à jour, l'application {issue}.",
                "Je ne peux lire aucune vidéo, l'écran reste noir.",
                "La page de paiement {issue} quand j'essaie de payer.",
                "Les notifications ne marchent plus et l'application {issue}.",
            ),
        },
        "order_status": {
            "complete": (
                "Où en est ma commande {order} ?",
                "Pouvez-vous me donner le statut de la commande {order} ?",
                "J'ai passé la commande {order} {date} et je n'ai plus de nouvelles depuis.",
                "La commande {order} a-t-elle déjà été expédiée ?",
                "Que se passe-t-il avec ma commande {order} ? J'ai commandé {product}.",
            ),
            "missing": (
                "Où en est ma commande ?",
                "Pouvez-vous me donner le statut de ma commande ? J'ai commandé {product}.",
                "J'ai passé une commande {date} et je n'ai plus de nouvelles depuis.",
                "Mon colis a-t-il déjà été expédié ?",
                "J'aimerais savoir quand vous allez expédier {product}.",
            ),
        },
        "cancellation": {
            "complete": (
                "Je veux résilier mon forfait {plan}.",
                "Merci d'annuler mon abonnement {plan} à la fin du mois.",
                "Comment résilier le forfait {plan} avant le prochain renouvellement ?",
                "J'aimerais mettre fin à mon adhésion {plan}.",
                "Annulez mon forfait {plan}, je ne l'utilise plus.",
            ),
            "missing": (
                "Je veux résilier mon abonnement.",
                "Merci d'annuler mon adhésion à la fin du mois.",
                "Comment résilier avant le prochain renouvellement ?",
                "J'aimerais mettre fin à mon abonnement, je ne l'utilise plus.",
                "Pouvez-vous empêcher le renouvellement de mon forfait ?",
            ),
        },
        "shipping_delay": {
            "complete": (
                "Mon colis de la commande {order} a {days} de retard.",
                "La commande {order} devait arriver {date} mais elle n'est pas encore là.",
                "Le suivi de la commande {order} n'a pas bougé depuis {days}.",
                "La livraison de la commande {order} est sans cesse reportée.",
                "La livraison pour {product} (commande {order}) est encore retardée.",
            ),
            "missing": (
                "Mon colis a {days} de retard.",
                "Ma livraison devait arriver {date} mais elle n'est pas encore là.",
                "Le suivi n'a pas bougé depuis {days}.",
                "La livraison pour {product} est sans cesse reportée.",
                "Le livreur a encore raté le créneau de livraison et mon colis est en retard.",
            ),
        },
        "general_question": {
            "complete": (
                "Est-ce que vous livrez vers {country} ?",
                "Quels moyens de paiement acceptez-vous ?",
                "Avez-vous {product} dans d'autres couleurs ?",
                "Quels sont les horaires du service client ?",
                "Proposez-vous des cartes cadeaux ?",
                "Quelle est la durée de la garantie pour {product} ?",
                "Avez-vous une réduction pour les étudiants ?",
                "Avez-vous un magasin à {city} ?",
            ),
            "missing": (),
        },
    },
}

# --------------------------------------------------------------------------------------------------
# Openers, closers and slot fillers
# --------------------------------------------------------------------------------------------------
_OPENERS: dict[str, tuple[str, ...]] = {
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
_CLOSERS: dict[str, tuple[str, ...]] = {
    "en": (
        "Thanks.",
        "Best regards, {name}.",
        "Cheers, {name}",
        "Kind regards.",
        "Thanks, {name}",
        "Talk soon.",
    ),
    "es": (
        "Gracias.",
        "Saludos, {name}.",
        "Un saludo.",
        "Gracias, {name}",
        "Atentamente, {name}.",
        "Quedo atento.",
    ),
    "de": (
        "Danke.",
        "Viele Grüße, {name}",
        "Mit freundlichen Grüßen, {name}",
        "Beste Grüße.",
        "Danke, {name}",
        "Gruß.",
    ),
    "fr": ("Merci.", "Cordialement, {name}", "Bien à vous.", "Merci, {name}", "Bonne journée.", "À bientôt."),
}
_FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Emma", "James", "Olivia", "Liam", "Sophie", "Daniel", "Grace", "Ryan"),
    "es": ("María", "Javier", "Lucía", "Carlos", "Sofía", "Diego", "Elena", "Pablo"),
    "de": ("Anna", "Lukas", "Lena", "Jonas", "Marie", "Felix", "Hannah", "Tobias"),
    "fr": ("Camille", "Louis", "Chloé", "Hugo", "Léa", "Julien", "Manon", "Thomas"),
}
_LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("smith", "johnson", "brown", "taylor", "walker", "clark"),
    "es": ("lopez", "garcia", "martinez", "sanchez", "romero", "navarro"),
    "de": ("mueller", "schmidt", "fischer", "weber", "wagner", "becker"),
    "fr": ("martin", "bernard", "dubois", "moreau", "laurent", "girard"),
}
_EMAIL_DOMAINS: dict[str, tuple[str, ...]] = {
    "en": ("gmail.com", "outlook.com", "yahoo.com", "icloud.com"),
    "es": ("gmail.com", "hotmail.es", "yahoo.es", "outlook.com"),
    "de": ("gmail.com", "web.de", "gmx.de", "t-online.de"),
    "fr": ("gmail.com", "orange.fr", "free.fr", "laposte.net"),
}
_MONTHS: dict[str, tuple[str, ...]] = {
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
_DATE_FORMATS = {
    "en": "on {month} {day}",
    "es": "el {day} de {month}",
    "de": "am {day}. {month}",
    "fr": "le {day} {month}",
}

_FILLERS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "product": (
            "a coffee maker",
            "wireless headphones",
            "a pair of running shoes",
            "a laptop stand",
            "a smartwatch",
            "a backpack",
            "a desk lamp",
            "a monitor",
        ),
        "payment": ("my credit card", "my PayPal account", "my bank statement", "my debit card"),
        "issue": (
            "crashes on startup",
            "freezes on the loading screen",
            "shows an error 500",
            "won't load at all",
            "logs me out every few minutes",
            "drains the battery really fast",
        ),
        "days": ("three days", "five days", "a week", "two weeks", "ten days"),
        "country": ("Canada", "Mexico", "Ireland", "Australia", "Japan"),
        "city": ("Chicago", "Boston", "Seattle", "Denver", "Atlanta"),
    },
    "es": {
        "product": (
            "una cafetera",
            "unos auriculares inalámbricos",
            "unas zapatillas de correr",
            "un soporte para portátil",
            "un reloj inteligente",
            "una mochila",
            "una lámpara de escritorio",
            "un monitor",
        ),
        "payment": (
            "mi tarjeta de crédito",
            "mi cuenta de PayPal",
            "mi extracto bancario",
            "mi tarjeta de débito",
        ),
        "issue": (
            "se cierra al arrancar",
            "se queda congelada en la pantalla de carga",
            "muestra un error 500",
            "no carga nada",
            "me cierra la sesión cada pocos minutos",
            "gasta la batería muy rápido",
        ),
        "days": ("tres días", "cinco días", "una semana", "dos semanas", "diez días"),
        "country": ("México", "Chile", "Portugal", "Argentina", "Francia"),
        "city": ("Sevilla", "Valencia", "Bilbao", "Zaragoza", "Málaga"),
    },
    "de": {
        "product": (
            "eine Kaffeemaschine",
            "kabellose Kopfhörer",
            "ein Paar Laufschuhe",
            "einen Laptopständer",
            "eine Smartwatch",
            "einen Rucksack",
            "eine Schreibtischlampe",
            "einen Monitor",
        ),
        "payment": (
            "meiner Kreditkarte",
            "meiner PayPal-Abrechnung",
            "meinem Kontoauszug",
            "meiner Debitkarte",
        ),
        "issue": (
            "stürzt beim Start ab",
            "hängt auf dem Ladebildschirm",
            "zeigt einen Fehler 500",
            "lädt überhaupt nicht",
            "meldet mich alle paar Minuten ab",
            "verbraucht extrem viel Akku",
        ),
        "days": ("drei Tage", "fünf Tage", "eine Woche", "zwei Wochen", "zehn Tage"),
        "country": ("Österreich", "Italien", "Polen", "Dänemark", "Kanada"),
        "city": ("Hamburg", "Köln", "Leipzig", "Stuttgart", "Dresden"),
    },
    "fr": {
        "product": (
            "une cafetière",
            "un casque sans fil",
            "une paire de chaussures de course",
            "un support d'ordinateur",
            "une montre connectée",
            "un sac à dos",
            "une lampe de bureau",
            "un écran",
        ),
        "payment": ("ma carte bancaire", "mon compte PayPal", "mon relevé bancaire", "ma carte de crédit"),
        "issue": (
            "plante au démarrage",
            "reste bloquée sur l'écran de chargement",
            "affiche une erreur 500",
            "ne charge rien du tout",
            "me déconnecte toutes les deux minutes",
            "vide la batterie très vite",
        ),
        "days": ("trois jours", "cinq jours", "une semaine", "deux semaines", "dix jours"),
        "country": ("la Belgique", "la Suisse", "le Canada", "l'Italie", "le Maroc"),
        "city": ("Lyon", "Marseille", "Lille", "Nantes", "Bordeaux"),
    },
}
