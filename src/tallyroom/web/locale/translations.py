# ruff: noqa: E501  (translation tables: one message per line)
"""Source of the ky and ru catalogs: `python -m tallyroom.web.locale.translations` rewrites
messages.pot (from the templates) and ky/ru/en messages.po from the tables below.

Keeping translations in one reviewed table makes a missing translation a test failure
(tests/publish/test_publish_i18n.py) instead of an English string on a Kyrgyz page.
"""

from __future__ import annotations

RU: dict[str, str] = {
    "Areas": "Территории",
    "Area": "Территория",
    "Stations reporting": "Участков с данными",
    "Turnout": "Явка",
    "Leading": "Лидирует",
    "machine count (scanners)": "машинный подсчёт (КОИБ)",
    "hand count": "ручной подсчёт",
    "recount": "пересчёт",
    "official count": "официальный подсчёт",
    "preliminary count": "предварительный подсчёт",
    "of %(n)s voters who took part": "от %(n)s избирателей, принявших участие в голосовании",
    "of %(n)s valid votes": "от %(n)s действительных бюллетеней",
    "of %(n)s ballots cast": "от %(n)s бюллетеней в ящиках",
    "of %(n)s registered voters": "от %(n)s зарегистрированных избирателей",
    "of %(n)s (%(f)s)": "от %(n)s (%(f)s)",
    "Share of voters who took part, %%": "Доля от принявших участие, %%",
    "Share of valid votes, %%": "Доля от действительных бюллетеней, %%",
    "Share of ballots cast, %%": "Доля от бюллетеней в ящиках, %%",
    "Share of registered voters, %%": "Доля от зарегистрированных избирателей, %%",
    "%(x)s of %(y)s polling stations reporting (%(p)s%%)": "Данные %(x)s из %(y)s избирательных участков (%(p)s%%)",
    "Registered voters": "Зарегистрировано избирателей",
    "Voters who took part": "Приняли участие",
    "Ballots cast": "Бюллетеней в ящиках",
    "Valid votes": "Действительных бюллетеней",
    "Invalid ballots": "Недействительных бюллетеней",
    "Party or candidate": "Партия или кандидат",
    "Votes": "Голоса",
    "Share as a bar": "Доля в виде полосы",
    "Provisional seat projection": "Предварительный расчёт мандатов",
    "Seats": "Мандаты",
    "Projection on %(x)s of %(y)s stations of this count; not a result.": "Расчёт по %(x)s из %(y)s участков этого подсчёта; это не результат выборов.",
    "No station has reported yet.": "Данных ещё нет ни с одного участка.",
    "No party passes the thresholds yet.": "Пока ни одна партия не преодолевает барьеры.",
    "Seats cannot be computed yet.": "Мандаты пока нельзя рассчитать.",
    "Seat diagram of %(n)s seats; the table below gives the numbers.": "Схема из %(n)s мандатов; числа приведены в таблице ниже.",
    "Seats of %(n)s": "Мандаты из %(n)s",
    "Party": "Партия",
    "Leading: %(who)s": "Лидирует: %(who)s",
    "Elected: %(who)s": "Избран(а): %(who)s",
    "“Against all” has more votes than any candidate: the election in this constituency fails and is held again.": "«Против всех» набрало больше голосов, чем любой кандидат: выборы в этом округе признаются несостоявшимися и проводятся повторно.",
    "Thresholds": "Барьеры",
    "Nationally": "По стране",
    "Passed": "Преодолён",
    "Regions passed": "Регионов преодолено",
    "Lowest region": "Наименьший результат",
    "yes": "да",
    "no": "нет",
    "Preliminary: this count is shown apart from the official count and never added to it.": "Предварительные данные: этот подсчёт показан отдельно от официального и никогда с ним не складывается.",
    "You are here": "Вы здесь",
    "Results": "Результаты",
    "Regions of this constituency": "Регионы этого округа",
    "Constituencies in this area": "Округа на этой территории",
    "Polling stations": "Избирательные участки",
    "Station": "Участок",
    "turnout": "явка",
    "not reported": "нет данных",
    "Skip to the results": "Перейти к результатам",
    "Language": "Язык",
    "Site": "Сайт",
    "What changed": "Что изменилось",
    "Snapshots": "Снимки",
    "Downloads": "Скачать",
    "JSON": "JSON",
    "The data on this page last changed in snapshot %(n)s (%(time)s).": "Данные на этой странице последний раз изменились в снимке %(n)s (%(time)s).",
    "Signed checkpoint": "Подписанная контрольная точка",
    "File list with SHA-256": "Список файлов с SHA-256",
    "Snapshot %(n)s, published %(time)s, covers the first %(size)s ledger entries.": "Снимок %(n)s, опубликован %(time)s, охватывает первые %(size)s записей журнала.",
    "Every number on this site is recomputed from the public ledger before it is published. Anyone can check it again with the command “tallyroom verify”.": "Каждое число на этом сайте перед публикацией пересчитывается по открытому журналу. Любой может проверить его заново командой «tallyroom verify».",
    "This is the first snapshot.": "Это первый снимок.",
    "Snapshot %(n)s against snapshot %(p)s: ledger entries %(a)s to %(b)s.": "Снимок %(n)s по сравнению со снимком %(p)s: записи журнала с %(a)s по %(b)s.",
    "New protocols: %(n)s.": "Новых протоколов: %(n)s.",
    "Totals changed: %(n)s.": "Изменившихся итогов: %(n)s.",
    "Totals that changed": "Изменившиеся итоги",
    "Contest": "Выборы",
    "Count": "Подсчёт",
    "New protocols": "Новые протоколы",
    "ledger entry": "запись журнала",
    "The first %(n)s are listed; changes.json has the counts.": "Показаны первые %(n)s; полные числа — в changes.json.",
    "Everything needed to recompute every number on this site. The formats are described in docs/bulletin.md of tallyroom.": "Всё, что нужно, чтобы пересчитать каждое число на этом сайте. Форматы описаны в docs/bulletin.md проекта tallyroom.",
    "File": "Файл",
    "What it holds": "Содержание",
    "Bytes": "Байт",
    "all results, every area and station (JSON)": "все результаты по всем территориям и участкам (JSON)",
    "results of one level (CSV)": "результаты одного уровня (CSV)",
    "station protocols of one region (JSON)": "протоколы участков одного региона (JSON)",
    "Each count is a separate column; counts are never added together.": "Каждый подсчёт — отдельный столбец; подсчёты никогда не складываются.",
    "a two-person decision (%(a)s) on ledger entry %(t)s": "решение двух лиц (%(a)s) по записи журнала %(t)s",
    "NIST SP 1500-100 v2 election results (JSON)": "результаты в формате NIST SP 1500-100 v2 (JSON)",
    "everything in one SQLite database": "всё в одной базе SQLite",
    "ledger entries with their exact bytes": "записи журнала с их точными байтами",
    "the election definition": "описание выборов",
    "all signed checkpoints": "все подписанные контрольные точки",
    "the commission's public key": "открытый ключ комиссии",
    "Results as of snapshot %(n)s.": "Результаты по состоянию на снимок %(n)s.",
    "Machine (scanner) counts are preliminary; the hand count is the official result. The two are never added together.": "Машинный подсчёт (КОИБ) предварительный; официальный результат — ручной подсчёт. Они никогда не складываются.",
    "Counts": "Подсчёты",
    "Regions": "Регионы",
    "Map: the leading party in each region. The table below lists the same.": "Карта: партия-лидер в каждом регионе. То же приведено в таблице ниже.",
    "no results yet": "результатов пока нет",
    "Leading party": "Партия-лидер",
    "Map: turnout in each region (darker is higher). The table below lists the same.": "Карта: явка в каждом регионе (темнее — выше). То же приведено в таблице ниже.",
    "Boundaries:": "Границы:",
    "Single-member constituencies": "Одномандатные округа",
    "Each snapshot is an unchangeable set of files. Its checkpoint is signed by the commission; a later checkpoint must extend every earlier one.": "Каждый снимок — неизменяемый набор файлов. Его контрольная точка подписана комиссией; каждая следующая контрольная точка должна продолжать все предыдущие.",
    "Snapshot": "Снимок",
    "Published": "Опубликован",
    "Ledger entries": "Записей журнала",
    "Merkle root": "Корень Меркла",
    "Checkpoint": "Контрольная точка",
    "Registered voters in the station list: %(n)s.": "Избирателей в списке участка: %(n)s.",
    "Station abroad.": "Участок за рубежом.",
    "No protocol of this count yet.": "Протокола этого подсчёта пока нет.",
    "Protocol lines": "Строки протокола",
    "Line": "Строка",
    "Value": "Значение",
    "Control rules: %(n)s warning(s)": "Контрольные соотношения: предупреждений — %(n)s",
    "Control rules: all hold": "Контрольные соотношения: все выполняются",
    "details": "подробно",
    "Ledger entry": "Запись журнала",
    "Leaf hash": "Хеш листа",
    "SHA-256 of the signed protocol": "SHA-256 подписанного протокола",
    "Received": "Получен",
    "imported from a file": "импортирован из файла",
    "signed by the station's device key %(k)s": "подписан ключом устройства участка %(k)s",
    "Control rules": "Контрольные соотношения",
    "Rule": "Соотношение",
    "✓: the rule holds for this protocol; ✗: it does not (left side / right side).": "✓ — соотношение выполняется для этого протокола; ✗ — не выполняется (левая часть / правая часть).",
    "History": "История",
    "Ledger entry %(i)s": "Запись журнала %(i)s",
    "No corrections or annulments are recorded for this station.": "Исправлений и отмен по этому участку не зарегистрировано.",
    "Nothing recorded yet.": "Пока ничего не зарегистрировано.",
}

KY: dict[str, str] = {
    "Areas": "Аймактар",
    "Area": "Аймак",
    "Stations reporting": "Маалымат берген участкалар",
    "Turnout": "Катышуу",
    "Leading": "Алдыда",
    "machine count (scanners)": "автоматтык эсептөө (АЭУ)",
    "hand count": "кол менен эсептөө",
    "recount": "кайра эсептөө",
    "official count": "расмий эсептөө",
    "preliminary count": "алдын ала эсептөө",
    "of %(n)s voters who took part": "добуш берүүгө катышкан %(n)s шайлоочудан",
    "of %(n)s valid votes": "%(n)s жарактуу бюллетенден",
    "of %(n)s ballots cast": "үкөктөгү %(n)s бюллетенден",
    "of %(n)s registered voters": "катталган %(n)s шайлоочудан",
    "of %(n)s (%(f)s)": "%(n)s (%(f)s)",
    "Share of voters who took part, %%": "Катышкандардан үлүшү, %%",
    "Share of valid votes, %%": "Жарактуу бюллетендерден үлүшү, %%",
    "Share of ballots cast, %%": "Үкөктөгү бюллетендерден үлүшү, %%",
    "Share of registered voters, %%": "Катталган шайлоочулардан үлүшү, %%",
    "%(x)s of %(y)s polling stations reporting (%(p)s%%)": "%(y)s шайлоо участкасынын %(x)s маалымат берди (%(p)s%%)",
    "Registered voters": "Катталган шайлоочулар",
    "Voters who took part": "Катышкандар",
    "Ballots cast": "Үкөктөгү бюллетендер",
    "Valid votes": "Жарактуу бюллетендер",
    "Invalid ballots": "Жараксыз бюллетендер",
    "Party or candidate": "Партия же талапкер",
    "Votes": "Добуштар",
    "Share as a bar": "Үлүшү тилке түрүндө",
    "Provisional seat projection": "Мандаттардын алдын ала эсеби",
    "Seats": "Мандаттар",
    "Projection on %(x)s of %(y)s stations of this count; not a result.": "Бул эсептөөнүн %(y)s участкасынын %(x)s боюнча эсеп; шайлоонун жыйынтыгы эмес.",
    "No station has reported yet.": "Азырынча бир да участкадан маалымат жок.",
    "No party passes the thresholds yet.": "Азырынча бир да партия босогодон өтө элек.",
    "Seats cannot be computed yet.": "Мандаттарды азырынча эсептөөгө болбойт.",
    "Seat diagram of %(n)s seats; the table below gives the numbers.": "%(n)s мандаттын схемасы; сандары төмөнкү таблицада.",
    "Seats of %(n)s": "%(n)s мандаттан",
    "Party": "Партия",
    "Leading: %(who)s": "Алдыда: %(who)s",
    "Elected: %(who)s": "Шайланды: %(who)s",
    "“Against all” has more votes than any candidate: the election in this constituency fails and is held again.": "«Баарына каршы» ар бир талапкерден көп добуш алды: бул округдагы шайлоо болбоду деп табылып, кайра өткөрүлөт.",
    "Thresholds": "Босоголор",
    "Nationally": "Өлкө боюнча",
    "Passed": "Өттү",
    "Regions passed": "Өткөн аймактар",
    "Lowest region": "Эң төмөнкү аймак",
    "yes": "ооба",
    "no": "жок",
    "Preliminary: this count is shown apart from the official count and never added to it.": "Алдын ала маалымат: бул эсептөө расмий эсептөөдөн өзүнчө көрсөтүлөт жана ага эч качан кошулбайт.",
    "You are here": "Сиз бул жердесиз",
    "Results": "Жыйынтыктар",
    "Regions of this constituency": "Бул округдун аймактары",
    "Constituencies in this area": "Бул аймактагы округдар",
    "Polling stations": "Шайлоо участкалары",
    "Station": "Участка",
    "turnout": "катышуу",
    "not reported": "маалымат жок",
    "Skip to the results": "Жыйынтыктарга өтүү",
    "Language": "Тил",
    "Site": "Сайт",
    "What changed": "Эмне өзгөрдү",
    "Snapshots": "Сүрөттөмөлөр",
    "Downloads": "Жүктөп алуу",
    "JSON": "JSON",
    "The data on this page last changed in snapshot %(n)s (%(time)s).": "Бул беттеги маалымат акыркы жолу %(n)s-сүрөттөмөдө өзгөргөн (%(time)s).",
    "Signed checkpoint": "Кол коюлган текшерүү чекити",
    "File list with SHA-256": "SHA-256 менен файлдардын тизмеси",
    "Snapshot %(n)s, published %(time)s, covers the first %(size)s ledger entries.": "%(n)s-сүрөттөмө, %(time)s жарыяланган, журналдын алгачкы %(size)s жазуусун камтыйт.",
    "Every number on this site is recomputed from the public ledger before it is published. Anyone can check it again with the command “tallyroom verify”.": "Бул сайттагы ар бир сан жарыяланганга чейин ачык журнал боюнча кайра эсептелет. Аны ар ким «tallyroom verify» буйругу менен кайра текшере алат.",
    "This is the first snapshot.": "Бул биринчи сүрөттөмө.",
    "Snapshot %(n)s against snapshot %(p)s: ledger entries %(a)s to %(b)s.": "%(n)s-сүрөттөмө %(p)s-сүрөттөмө менен салыштырганда: журналдын %(a)s – %(b)s жазуулары.",
    "New protocols: %(n)s.": "Жаңы протоколдор: %(n)s.",
    "Totals changed: %(n)s.": "Өзгөргөн жыйынтыктар: %(n)s.",
    "Totals that changed": "Өзгөргөн жыйынтыктар",
    "Contest": "Шайлоо",
    "Count": "Эсептөө",
    "New protocols": "Жаңы протоколдор",
    "ledger entry": "журналдын жазуусу",
    "The first %(n)s are listed; changes.json has the counts.": "Алгачкы %(n)s көрсөтүлдү; толук сандар changes.json файлында.",
    "Everything needed to recompute every number on this site. The formats are described in docs/bulletin.md of tallyroom.": "Бул сайттагы ар бир санды кайра эсептөө үчүн керектүүнүн баары. Форматтар tallyroom долбоорунун docs/bulletin.md файлында сүрөттөлгөн.",
    "File": "Файл",
    "What it holds": "Мазмуну",
    "Bytes": "Байт",
    "all results, every area and station (JSON)": "бардык аймактар жана участкалар боюнча бардык жыйынтыктар (JSON)",
    "results of one level (CSV)": "бир деңгээлдин жыйынтыктары (CSV)",
    "station protocols of one region (JSON)": "бир аймактын участкаларынын протоколдору (JSON)",
    "Each count is a separate column; counts are never added together.": "Ар бир эсептөө өзүнчө мамычада; эсептөөлөр эч качан кошулбайт.",
    "a two-person decision (%(a)s) on ledger entry %(t)s": "журналдын %(t)s-жазуусу боюнча эки адамдын чечими (%(a)s)",
    "NIST SP 1500-100 v2 election results (JSON)": "NIST SP 1500-100 v2 форматындагы жыйынтыктар (JSON)",
    "everything in one SQLite database": "баары бир SQLite базасында",
    "ledger entries with their exact bytes": "журналдын жазуулары так байттары менен",
    "the election definition": "шайлоонун сыпаттамасы",
    "all signed checkpoints": "кол коюлган бардык текшерүү чекиттери",
    "the commission's public key": "комиссиянын ачык ачкычы",
    "Results as of snapshot %(n)s.": "%(n)s-сүрөттөмө боюнча жыйынтыктар.",
    "Machine (scanner) counts are preliminary; the hand count is the official result. The two are never added together.": "Автоматтык (АЭУ) эсептөө алдын ала; расмий жыйынтык — кол менен эсептөө. Алар эч качан кошулбайт.",
    "Counts": "Эсептөөлөр",
    "Regions": "Аймактар",
    "Map: the leading party in each region. The table below lists the same.": "Карта: ар бир аймакта алдыдагы партия. Ошол эле маалымат төмөнкү таблицада.",
    "no results yet": "жыйынтык азырынча жок",
    "Leading party": "Алдыдагы партия",
    "Map: turnout in each region (darker is higher). The table below lists the same.": "Карта: ар бир аймактагы катышуу (кочкулу — жогору). Ошол эле маалымат төмөнкү таблицада.",
    "Boundaries:": "Чек аралар:",
    "Single-member constituencies": "Бир мандаттуу округдар",
    "Each snapshot is an unchangeable set of files. Its checkpoint is signed by the commission; a later checkpoint must extend every earlier one.": "Ар бир сүрөттөмө — өзгөрбөс файлдардын жыйындысы. Анын текшерүү чекитине комиссия кол коёт; кийинки ар бир текшерүү чекити мурункуларынын баарын улантышы керек.",
    "Snapshot": "Сүрөттөмө",
    "Published": "Жарыяланган",
    "Ledger entries": "Журналдын жазуулары",
    "Merkle root": "Меркл тамыры",
    "Checkpoint": "Текшерүү чекити",
    "Registered voters in the station list: %(n)s.": "Участканын тизмесиндеги шайлоочулар: %(n)s.",
    "Station abroad.": "Чет өлкөдөгү участка.",
    "No protocol of this count yet.": "Бул эсептөөнүн протоколу азырынча жок.",
    "Protocol lines": "Протоколдун саптары",
    "Line": "Сап",
    "Value": "Мааниси",
    "Control rules: %(n)s warning(s)": "Контролдук катыштар: %(n)s эскертүү",
    "Control rules: all hold": "Контролдук катыштар: баары аткарылат",
    "details": "толугу менен",
    "Ledger entry": "Журналдын жазуусу",
    "Leaf hash": "Жалбырактын хеши",
    "SHA-256 of the signed protocol": "Кол коюлган протоколдун SHA-256",
    "Received": "Алынды",
    "imported from a file": "файлдан импорттолгон",
    "signed by the station's device key %(k)s": "участканын түзмөгүнүн %(k)s ачкычы менен кол коюлган",
    "Control rules": "Контролдук катыштар",
    "Rule": "Катыш",
    "✓: the rule holds for this protocol; ✗: it does not (left side / right side).": "✓ — бул протокол үчүн катыш аткарылат; ✗ — аткарылбайт (сол жагы / оң жагы).",
    "History": "Тарых",
    "Ledger entry %(i)s": "Журналдын %(i)s-жазуусу",
    "No corrections or annulments are recorded for this station.": "Бул участка боюнча оңдоолор жана жокко чыгаруулар катталган эмес.",
    "Nothing recorded yet.": "Азырынча эч нерсе катталган эмес.",
}

TABLES = {"ru": RU, "ky": KY}


def main() -> None:
    import os
    from datetime import UTC, datetime
    from pathlib import Path

    from babel.messages.frontend import CommandLineInterface
    from babel.messages.pofile import read_po, write_po

    here = Path(__file__).parent
    web = here.parent
    pot = here / "messages.pot"
    cwd = os.getcwd()
    os.chdir(web)
    try:
        CommandLineInterface().run(  # type: ignore[no-untyped-call]
            [
                "pybabel",
                "-q",
                "extract",
                "-F",
                str(here / "babel.cfg"),
                "-o",
                str(pot),
                "--no-location",
                "--omit-header",
                "--sort-output",
                ".",
            ]
        )
    finally:
        os.chdir(cwd)
    for lang in ("ky", "ru", "en"):
        with pot.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        catalog.project = "tallyroom"
        catalog.version = "1"
        catalog.fuzzy = False
        catalog.creation_date = catalog.revision_date = datetime(2026, 1, 1, tzinfo=UTC)
        catalog.last_translator = "tallyroom maintainers"
        catalog.language_team = {"ky": "Kyrgyz", "ru": "Russian", "en": "English"}[lang]
        table = TABLES.get(lang, {})
        missing = []
        for msg in catalog:
            if not msg.id:
                continue
            if lang == "en":
                msg.string = ""  # English is the source language
            elif msg.id in table:
                msg.string = table[msg.id]
            else:
                missing.append(msg.id)
        out = here / lang / "LC_MESSAGES" / "messages.po"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False)
        for m in missing:
            print(f"{lang}: missing translation: {m!r}")


if __name__ == "__main__":
    main()
