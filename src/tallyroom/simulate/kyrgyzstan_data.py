"""Published facts and stated assumptions behind the synthetic Kyrgyzstan 2021 election.

Three kinds of numbers live here, each marked:

* **official** — the CEC's final result of the Jogorku Kenesh election of 28 November 2021
  (resolution No. 836 of 15 December 2021, as reported by TRT Kyrgyz, Kabar/Trend.az,
  Interfax and 24.kg), and the election-night scanner (ASU) shares at 2,247 of 2,494 stations;
  copied from `data/kg_2021_official/` (README.md, results.json).
* **derived from 2020** — computed from the Kloop station-level results of 4 October 2020
  (`data/kg_2020_parl_kloop/PARTIES_RESULTS_REACT_LEVEL_ONE_NEW.csv`, KloopMedia/
  ParliamentCalculatorV2 @1e616c2): stations per oblast, the spread of station sizes, and the
  regional strength of the parties that ran in both years. `tests/simulate` recomputes them
  from the file when it is present.
* **assumed** — round numbers chosen to look like the country (regional voter rolls, turnout
  by region). They are not official figures and nothing should cite them as such.

P-codes are OCHA COD-AB 2018 ADM1 codes (`data/kg_boundaries/kg_regions_geo.json`).
"""

from __future__ import annotations

from dataclasses import dataclass

# -- official national figures ---------------------------------------------------------------

REGISTERED = 3_703_420
REGISTERED_ABROAD = 84_128
TOOK_PART = 1_281_622
STATIONS = 2_494
STATIONS_ABROAD = 59
SMD_COUNT = 36
LIST_SEATS = 54

#: Official final votes of the six parties that won list seats (party id -> votes).
WINNER_VOTES: dict[str, int] = {
    "ata_jurt_kyrgyzstan": 222_005,
    "ishenim": 174_470,
    "yntymak": 141_009,
    "alliance": 106_955,
    "butun_kyrgyzstan": 90_223,
    "yiman_nuru": 79_025,
}

#: Invalid ballots, per mille of voters who took part ("about 9.6%", preliminary).
INVALID_PER_MILLE = 96
#: Ballots issued but not found in the boxes, per 10,000 who took part (assumed; not published).
NOT_IN_BOXES_PER_10000 = 5


@dataclass(frozen=True)
class Party:
    id: str
    en: str
    ru: str
    ky: str
    #: Election-night scanner share, hundredths of a percent of voters who took part (official).
    asu_share: int
    color: str


#: The 21 parties in the order of the official ASU listing, then "against all" (asu_share of
#: against all is its scanner share too). Colours are a display palette, not party colours.
PARTIES: tuple[Party, ...] = (
    Party("ata_meken", "Ata-Meken", "Ата-Мекен", "Ата-Мекен", 348, "#1f77b4"),
    Party("butun_kyrgyzstan", "Butun Kyrgyzstan", "Бутун Кыргызстан", "Бүтүн Кыргызстан",
          674, "#d62728"),
    Party("alliance", "Alliance", "Альянс", "Альянс", 823, "#2ca02c"),
    Party("legalize", "Legalize", "Легалайз", "Легалайз", 62, "#8c564b"),
    Party("yiman_nuru", "Yiman Nuru", "Ыйман Нуру", "Ыйман Нуру", 601, "#17becf"),
    Party("kuchtuu_region", "Kuchtuu Region", "Кучтуу Регион", "Күчтүү Регион", 62, "#7f7f7f"),
    Party("bagyt", "Bagyt", "Багыт", "Багыт", 95, "#bcbd22"),
    Party("yntymak", "Yntymak", "Ынтымак", "Ынтымак", 1081, "#9467bd"),
    Party("ishenim", "Ishenim", "Ишеним", "Ишеним", 1350, "#ff7f0e"),
    Party("azattyk", "Azattyk", "Азаттык", "Азаттык", 401, "#aec7e8"),
    Party("mekenchil_el", "Mekenchil El", "Мекенчил Эл", "Мекенчил Эл", 154, "#ffbb78"),
    Party("kyrgyzstan_greens", "Kyrgyzstan Greens", "Зелёные Кыргызстана",
          "Кыргызстандын жашылдары", 41, "#98df8a"),
    Party("jashasyn_kyrgyzstan", "Jashasyn Kyrgyzstan", "Жашасын Кыргызстан",
          "Жашасын Кыргызстан", 44, "#ff9896"),
    Party("social_democrats", "Social Democrats", "Социал-демократы", "Социал-демократтар",
          321, "#c5b0d5"),
    Party("aruuzat_el_kutu", "Aruuzat-El Kutu", "Аруузат-Эл Куту", "Аруузат-Эл Куту", 46,
          "#c49c94"),
    Party("patriotic_unity", "Patriotic Party of Unity of Kyrgyzstan",
          "Патриотическая партия единства Кыргызстана",
          "Кыргызстандын биримдик патриоттук партиясы", 96, "#f7b6d2"),
    Party("uluttar_birimdigi", "Uluttar Birimdigi", "Улуттар Биримдиги", "Улуттар биримдиги",
          248, "#dbdb8d"),
    Party("el_umutu", "El Umutu", "Эл Умуту", "Эл үмүтү", 446, "#9edae5"),
    Party("ordo", "Ordo", "Ордо", "Ордо", 46, "#393b79"),
    Party("uluu_jurt", "Uluu-Jurt", "Улуу-Журт", "Улуу-Журт", 71, "#637939"),
    Party("ata_jurt_kyrgyzstan", "Ata-Jurt Kyrgyzstan", "Ата-Журт Кыргызстан",
          "Ата-Журт Кыргызстан", 1686, "#e377c2"),
)
AGAINST_ALL = Party("against_all", "Against all", "Против всех", "Баарына каршы", 217, "#555555")


@dataclass(frozen=True)
class Region:
    id: str
    en: str
    ru: str
    ky: str
    #: OCHA P-code of the unit (None for the voters abroad).
    code: str | None
    kind: str
    #: Polling stations in the 2020 Kloop file (derived from 2020): weights for 2,435 stations.
    stations_2020: int
    #: Approximate voter roll in thousands (assumed): weights for the 3,619,292 at home.
    roll_thousands: int
    #: Turnout, per mille of registered (assumed), before scaling to the official total.
    turnout_per_mille: int
    #: Standard deviation of log(station size) in 2020 (derived from 2020), in hundredths.
    size_log_sd: int


#: The 7 oblasts, the two cities of republican significance, and the stations abroad.
REGIONS: tuple[Region, ...] = (
    Region("batken", "Batken", "Баткенская область", "Баткен облусу", "KG05000000000",
           "oblast", 210, 280, 370, 59),
    Region("chui", "Chui", "Чуйская область", "Чүй облусу", "KG08000000000",
           "oblast", 392, 600, 330, 56),
    Region("issyk-kul", "Issyk-Kul", "Иссык-Кульская область", "Ысык-Көл облусу",
           "KG02000000000", "oblast", 243, 290, 360, 68),
    Region("jalal-abad", "Jalal-Abad", "Джалал-Абадская область", "Жалал-Абад облусу",
           "KG03000000000", "oblast", 440, 640, 380, 67),
    Region("naryn", "Naryn", "Нарынская область", "Нарын облусу", "KG04000000000",
           "oblast", 165, 180, 420, 65),
    Region("osh-oblast", "Osh oblast", "Ошская область", "Ош облусу", "KG06000000000",
           "oblast", 487, 690, 380, 72),
    Region("talas", "Talas", "Таласская область", "Талас облусу", "KG07000000000",
           "oblast", 116, 160, 440, 62),
    Region("bishkek", "Bishkek city", "город Бишкек", "Бишкек шаары", "KG11000000000",
           "city", 232, 600, 250, 19),
    Region("osh-city", "Osh city", "город Ош", "Ош шаары", "KG21000000000",
           "city", 83, 170, 300, 28),
    Region("abroad", "Abroad", "За рубежом", "Чет өлкөдө", None, "abroad", 45, 0, 110, 122),
)

#: The nine units where a party needs 0.5% of voters who took part (official).
THRESHOLD_REGIONS: tuple[str, ...] = tuple(r.id for r in REGIONS if r.code is not None)

#: Kloop 2020 oblast labels (`level_one`) -> region ids.
KLOOP_REGION: dict[str, str] = {
    "БАТКЕНСКАЯ ОБЛАСТЬ": "batken",
    "ЧУЙСКАЯ ОБЛАСТЬ": "chui",
    "ЫСЫК-КУЛЬСКАЯ ОБЛАСТЬ": "issyk-kul",
    "ДЖАЛАЛ-АБАДСКАЯ ОБЛАСТЬ": "jalal-abad",
    "НАРЫНСКАЯ ОБЛАСТЬ": "naryn",
    "ОШСКАЯ ОБЛАСТЬ": "osh-oblast",
    "ТАЛАССКАЯ ТИК": "talas",
    "БИШКЕК Г.": "bishkek",
    "ОШ Г.": "osh-city",
    "МИД КР": "abroad",
}

#: 2021 parties that also ran in 2020 -> their Kloop 2020 column.
KLOOP_PARTY: dict[str, str] = {
    "yiman_nuru": "«ЫЙМАН НУРУ»",
    "butun_kyrgyzstan": "«БҮТҮН КЫРГЫЗСТАН» саясий партиясы",
    "ata_meken": "«АТА МЕКЕН» саясий социалисттик партиясы",
    "social_democrats": "СОЦИАЛ-ДЕМОКРАТТАР",
    "ordo": "«ОРДО»",
}

#: Derived from 2020: a party's share of the votes in a region divided by its national share,
#: in hundredths, in the order of REGIONS.
REGIONAL_STRENGTH_2020: dict[str, tuple[int, ...]] = {
    "yiman_nuru": (88, 103, 137, 75, 193, 55, 155, 143, 61, 210),
    "butun_kyrgyzstan": (303, 60, 21, 112, 30, 124, 18, 83, 67, 608),
    "ata_meken": (79, 132, 175, 50, 139, 54, 141, 137, 100, 157),
    "social_democrats": (14, 184, 139, 9, 166, 4, 21, 329, 6, 95),
    "ordo": (80, 237, 128, 29, 110, 24, 175, 154, 11, 39),
}

#: Cities of the 59 stations abroad and how many each gets (assumed; illustrative).
ABROAD_CITIES: tuple[tuple[str, str, str, int], ...] = (
    ("Moscow", "Москва", "Москва", 20),
    ("Saint Petersburg", "Санкт-Петербург", "Санкт-Петербург", 6),
    ("Yekaterinburg", "Екатеринбург", "Екатеринбург", 4),
    ("Novosibirsk", "Новосибирск", "Новосибирск", 3),
    ("Irkutsk", "Иркутск", "Иркутск", 1),
    ("Krasnoyarsk", "Красноярск", "Красноярск", 2),
    ("Kazan", "Казань", "Казан", 2),
    ("Samara", "Самара", "Самара", 2),
    ("Almaty", "Алматы", "Алматы", 3),
    ("Nur-Sultan", "Нур-Султан", "Нур-Султан", 2),
    ("Tashkent", "Ташкент", "Ташкент", 1),
    ("Istanbul", "Стамбул", "Стамбул", 3),
    ("Ankara", "Анкара", "Анкара", 1),
    ("Dubai", "Дубай", "Дубай", 2),
    ("Seoul", "Сеул", "Сеул", 2),
    ("Washington", "Вашингтон", "Вашингтон", 1),
    ("New York", "Нью-Йорк", "Нью-Йорк", 2),
    ("London", "Лондон", "Лондон", 1),
    ("Berlin", "Берлин", "Берлин", 1),
)

#: Bishkek's four districts, used to name its constituencies: (en, ru, ky).
BISHKEK_DISTRICTS: tuple[tuple[str, str, str], ...] = (
    ("Leninsky", "Ленинский", "Ленин"),
    ("Oktyabrsky", "Октябрьский", "Октябрь"),
    ("Pervomaisky", "Первомайский", "Биринчи Май"),
    ("Sverdlovsky", "Свердловский", "Свердлов"),
)
#: Where "against all" beat every candidate on 28 November 2021 (official), so the election
#: failed; the synthetic constituencies of these districts reproduce it.
AGAINST_ALL_WINS: tuple[str, ...] = ("Pervomaisky", "Sverdlovsky")

# -- synthetic candidate names: (ky, ru, en) ---------------------------------------------------

SURNAMES: tuple[tuple[str, str], ...] = (
    ("Асанов", "Asanov"), ("Бакиров", "Bakirov"), ("Жумабаев", "Jumabaev"),
    ("Токтогулов", "Toktogulov"), ("Мамытов", "Mamytov"), ("Сыдыков", "Sydykov"),
    ("Осмонов", "Osmonov"), ("Абдыкадыров", "Abdykadyrov"), ("Турдубаев", "Turdubaev"),
    ("Кадыров", "Kadyrov"), ("Нурланов", "Nurlanov"), ("Бейшеналиев", "Beishenaliev"),
    ("Касымов", "Kasymov"), ("Эсенов", "Esenov"), ("Исаков", "Isakov"),
    ("Шаршеев", "Sharsheev"), ("Молдокулов", "Moldokulov"), ("Мураталиев", "Murataliev"),
    ("Орозбеков", "Orozbekov"), ("Сулайманов", "Sulaimanov"), ("Темиров", "Temirov"),
    ("Үсөнов", "Usonov"), ("Дүйшөев", "Duishoev"), ("Калыков", "Kalykov"),
)
MALE_NAMES: tuple[tuple[str, str, str], ...] = (
    ("Азамат", "Азамат", "Azamat"), ("Бакыт", "Бакыт", "Bakyt"), ("Нурлан", "Нурлан", "Nurlan"),
    ("Эрлан", "Эрлан", "Erlan"), ("Улан", "Улан", "Ulan"), ("Талант", "Талант", "Talant"),
    ("Марат", "Марат", "Marat"), ("Канат", "Канат", "Kanat"), ("Тилек", "Тилек", "Tilek"),
    ("Айбек", "Айбек", "Aibek"), ("Жоомарт", "Жоомарт", "Joomart"), ("Медер", "Медер", "Meder"),
)
FEMALE_NAMES: tuple[tuple[str, str, str], ...] = (
    ("Айгүл", "Айгуль", "Aigul"), ("Гүлнара", "Гульнара", "Gulnara"),
    ("Жылдыз", "Жылдыз", "Jyldyz"), ("Назира", "Назира", "Nazira"),
    ("Чолпон", "Чолпон", "Cholpon"), ("Динара", "Динара", "Dinara"),
    ("Бермет", "Бермет", "Bermet"), ("Асел", "Асель", "Asel"), ("Элмира", "Эльмира", "Elmira"),
)

_RU_LETTERS = str.maketrans({"ү": "у", "ө": "о", "ң": "н", "Ү": "У", "Ө": "О", "Ң": "Н"})


def russian_spelling(kyrgyz: str) -> str:
    """A Kyrgyz Cyrillic surname as Russian documents spell it (ү → у, ө → о, ң → н)."""
    return kyrgyz.translate(_RU_LETTERS)
