"""The breed list doggo collects by default, and the mapping from folder names to breed names."""

from __future__ import annotations

import re

# Breeds with full AKC recognition, written out from the AKC's published list (2024) so the
# project owns its list; the AKC adds breeds most years, so treat this as data to update.
# The original's 188 names live in ../shared/breeds for comparison only.
AKC_BREEDS: tuple[str, ...] = (
    "Affenpinscher", "Afghan Hound", "Airedale Terrier", "Akita", "Alaskan Malamute",
    "American English Coonhound", "American Eskimo Dog", "American Foxhound",
    "American Hairless Terrier", "American Staffordshire Terrier", "American Water Spaniel",
    "Anatolian Shepherd Dog", "Australian Cattle Dog", "Australian Shepherd", "Australian Terrier",
    "Azawakh", "Barbet", "Basenji", "Basset Fauve de Bretagne", "Basset Hound", "Beagle",
    "Bearded Collie", "Beauceron", "Bedlington Terrier", "Belgian Laekenois", "Belgian Malinois",
    "Belgian Sheepdog", "Belgian Tervuren", "Bergamasco Sheepdog", "Berger Picard",
    "Bernese Mountain Dog", "Bichon Frise", "Biewer Terrier", "Black and Tan Coonhound",
    "Black Russian Terrier", "Bloodhound", "Bluetick Coonhound", "Boerboel", "Border Collie",
    "Border Terrier", "Borzoi", "Boston Terrier", "Bouvier des Flandres", "Boxer",
    "Boykin Spaniel", "Bracco Italiano", "Briard", "Brittany", "Brussels Griffon", "Bull Terrier",
    "Bulldog", "Bullmastiff", "Cairn Terrier", "Canaan Dog", "Cane Corso",
    "Cardigan Welsh Corgi", "Cavalier King Charles Spaniel", "Cesky Terrier",
    "Chesapeake Bay Retriever", "Chihuahua", "Chinese Crested", "Chinese Shar-Pei", "Chinook",
    "Chow Chow", "Cirneco dell'Etna", "Clumber Spaniel", "Cocker Spaniel", "Collie",
    "Coton de Tulear", "Curly-Coated Retriever", "Dachshund", "Dalmatian",
    "Dandie Dinmont Terrier", "Doberman Pinscher", "Dogo Argentino", "Dogue de Bordeaux",
    "English Cocker Spaniel", "English Foxhound", "English Setter", "English Springer Spaniel",
    "English Toy Spaniel", "Entlebucher Mountain Dog", "Field Spaniel", "Finnish Lapphund",
    "Finnish Spitz", "Flat-Coated Retriever", "French Bulldog", "German Pinscher",
    "German Shepherd Dog", "German Shorthaired Pointer", "German Wirehaired Pointer",
    "Giant Schnauzer", "Glen of Imaal Terrier", "Golden Retriever", "Gordon Setter",
    "Grand Basset Griffon Vendeen", "Great Dane", "Great Pyrenees", "Greater Swiss Mountain Dog",
    "Greyhound", "Harrier", "Havanese", "Ibizan Hound", "Icelandic Sheepdog",
    "Irish Red and White Setter", "Irish Setter", "Irish Terrier", "Irish Water Spaniel",
    "Irish Wolfhound", "Italian Greyhound", "Japanese Chin", "Keeshond", "Kerry Blue Terrier",
    "Komondor", "Kuvasz", "Labrador Retriever", "Lagotto Romagnolo", "Lakeland Terrier",
    "Lancashire Heeler", "Leonberger", "Lhasa Apso", "Lowchen", "Maltese", "Manchester Terrier",
    "Mastiff", "Miniature American Shepherd", "Miniature Bull Terrier", "Miniature Pinscher",
    "Miniature Schnauzer", "Mudi", "Neapolitan Mastiff", "Nederlandse Kooikerhondje",
    "Newfoundland", "Norfolk Terrier", "Norrbottenspets", "Norwegian Buhund",
    "Norwegian Elkhound", "Norwegian Lundehund", "Norwich Terrier",
    "Nova Scotia Duck Tolling Retriever", "Old English Sheepdog", "Otterhound", "Papillon",
    "Parson Russell Terrier", "Pekingese", "Pembroke Welsh Corgi",
    "Petit Basset Griffon Vendeen", "Pharaoh Hound", "Plott Hound", "Pointer",
    "Polish Lowland Sheepdog", "Pomeranian", "Poodle", "Portuguese Podengo Pequeno",
    "Portuguese Water Dog", "Pug", "Puli", "Pumi", "Pyrenean Shepherd", "Rat Terrier",
    "Redbone Coonhound", "Rhodesian Ridgeback", "Rottweiler", "Russell Terrier", "Russian Toy",
    "Saint Bernard", "Saluki", "Samoyed", "Schipperke", "Scottish Deerhound", "Scottish Terrier",
    "Sealyham Terrier", "Shetland Sheepdog", "Shiba Inu", "Shih Tzu", "Siberian Husky",
    "Silky Terrier", "Skye Terrier", "Sloughi", "Slovensky Cuvac", "Smooth Fox Terrier",
    "Soft Coated Wheaten Terrier", "Spanish Mastiff", "Spanish Water Dog", "Spinone Italiano",
    "Staffordshire Bull Terrier", "Standard Schnauzer", "Sussex Spaniel", "Swedish Vallhund",
    "Thai Ridgeback", "Tibetan Mastiff", "Tibetan Spaniel", "Tibetan Terrier", "Toy Fox Terrier",
    "Treeing Walker Coonhound", "Vizsla", "Weimaraner", "Welsh Springer Spaniel", "Welsh Terrier",
    "West Highland White Terrier", "Whippet", "Wire Fox Terrier", "Wirehaired Pointing Griffon",
    "Wirehaired Vizsla", "Xoloitzcuintli", "Yorkshire Terrier",
)  # fmt: skip

# (wnid, Stanford-Dogs-style folder name) of every ImageNet dog class, in class-index order.
DOG_WNIDS_AND_NAMES: tuple[tuple[str, str], ...] = (
    ("n02085620", "Chihuahua"),
    ("n02085782", "Japanese_spaniel"),
    ("n02085936", "Maltese_dog"),
    ("n02086079", "Pekinese"),
    ("n02086240", "Shih-Tzu"),
    ("n02086646", "Blenheim_spaniel"),
    ("n02086910", "papillon"),
    ("n02087046", "toy_terrier"),
    ("n02087394", "Rhodesian_ridgeback"),
    ("n02088094", "Afghan_hound"),
    ("n02088238", "basset"),
    ("n02088364", "beagle"),
    ("n02088466", "bloodhound"),
    ("n02088632", "bluetick"),
    ("n02089078", "black-and-tan_coonhound"),
    ("n02089867", "Walker_hound"),
    ("n02089973", "English_foxhound"),
    ("n02090379", "redbone"),
    ("n02090622", "borzoi"),
    ("n02090721", "Irish_wolfhound"),
    ("n02091032", "Italian_greyhound"),
    ("n02091134", "whippet"),
    ("n02091244", "Ibizan_hound"),
    ("n02091467", "Norwegian_elkhound"),
    ("n02091635", "otterhound"),
    ("n02091831", "Saluki"),
    ("n02092002", "Scottish_deerhound"),
    ("n02092339", "Weimaraner"),
    ("n02093256", "Staffordshire_bullterrier"),
    ("n02093428", "American_Staffordshire_terrier"),
    ("n02093647", "Bedlington_terrier"),
    ("n02093754", "Border_terrier"),
    ("n02093859", "Kerry_blue_terrier"),
    ("n02093991", "Irish_terrier"),
    ("n02094114", "Norfolk_terrier"),
    ("n02094258", "Norwich_terrier"),
    ("n02094433", "Yorkshire_terrier"),
    ("n02095314", "wire-haired_fox_terrier"),
    ("n02095570", "Lakeland_terrier"),
    ("n02095889", "Sealyham_terrier"),
    ("n02096051", "Airedale"),
    ("n02096177", "cairn"),
    ("n02096294", "Australian_terrier"),
    ("n02096437", "Dandie_Dinmont"),
    ("n02096585", "Boston_bull"),
    ("n02097047", "miniature_schnauzer"),
    ("n02097130", "giant_schnauzer"),
    ("n02097209", "standard_schnauzer"),
    ("n02097298", "Scotch_terrier"),
    ("n02097474", "Tibetan_terrier"),
    ("n02097658", "silky_terrier"),
    ("n02098105", "soft-coated_wheaten_terrier"),
    ("n02098286", "West_Highland_white_terrier"),
    ("n02098413", "Lhasa"),
    ("n02099267", "flat-coated_retriever"),
    ("n02099429", "curly-coated_retriever"),
    ("n02099601", "golden_retriever"),
    ("n02099712", "Labrador_retriever"),
    ("n02099849", "Chesapeake_Bay_retriever"),
    ("n02100236", "German_short-haired_pointer"),
    ("n02100583", "vizsla"),
    ("n02100735", "English_setter"),
    ("n02100877", "Irish_setter"),
    ("n02101006", "Gordon_setter"),
    ("n02101388", "Brittany_spaniel"),
    ("n02101556", "clumber"),
    ("n02102040", "English_springer"),
    ("n02102177", "Welsh_springer_spaniel"),
    ("n02102318", "cocker_spaniel"),
    ("n02102480", "Sussex_spaniel"),
    ("n02102973", "Irish_water_spaniel"),
    ("n02104029", "kuvasz"),
    ("n02104365", "schipperke"),
    ("n02105056", "groenendael"),
    ("n02105162", "malinois"),
    ("n02105251", "briard"),
    ("n02105412", "kelpie"),
    ("n02105505", "komondor"),
    ("n02105641", "Old_English_sheepdog"),
    ("n02105855", "Shetland_sheepdog"),
    ("n02106030", "collie"),
    ("n02106166", "Border_collie"),
    ("n02106382", "Bouvier_des_Flandres"),
    ("n02106550", "Rottweiler"),
    ("n02106662", "German_shepherd"),
    ("n02107142", "Doberman"),
    ("n02107312", "miniature_pinscher"),
    ("n02107574", "Greater_Swiss_Mountain_dog"),
    ("n02107683", "Bernese_mountain_dog"),
    ("n02107908", "Appenzeller"),
    ("n02108000", "EntleBucher"),
    ("n02108089", "boxer"),
    ("n02108422", "bull_mastiff"),
    ("n02108551", "Tibetan_mastiff"),
    ("n02108915", "French_bulldog"),
    ("n02109047", "Great_Dane"),
    ("n02109525", "Saint_Bernard"),
    ("n02109961", "Eskimo_dog"),
    ("n02110063", "malamute"),
    ("n02110185", "Siberian_husky"),
    ("n02110341", "dalmatian"),
    ("n02110627", "affenpinscher"),
    ("n02110806", "basenji"),
    ("n02110958", "pug"),
    ("n02111129", "Leonberg"),
    ("n02111277", "Newfoundland"),
    ("n02111500", "Great_Pyrenees"),
    ("n02111889", "Samoyed"),
    ("n02112018", "Pomeranian"),
    ("n02112137", "chow"),
    ("n02112350", "keeshond"),
    ("n02112706", "Brabancon_griffon"),
    ("n02113023", "Pembroke"),
    ("n02113186", "Cardigan"),
    ("n02113624", "toy_poodle"),
    ("n02113712", "miniature_poodle"),
    ("n02113799", "standard_poodle"),
    ("n02113978", "Mexican_hairless"),
    ("n02115641", "dingo"),
    ("n02115913", "dhole"),
    ("n02116738", "African_hunting_dog"),
)  # fmt: skip

# AKC names of ImageNet dog classes whose ImageNet name differs. Left out on purpose: ImageNet's
# "Eskimo dog" (a sled dog, not the American Eskimo Dog), "toy terrier" and "Blenheim spaniel"
# (each could be several AKC breeds); AKC's Poodle is matched to the standard poodle.
AKC_NAMES_OF_IMAGENET = {
    "Airedale": "Airedale Terrier", "Malamute": "Alaskan Malamute", "Basset": "Basset Hound",
    "Black-And-Tan Coonhound": "Black and Tan Coonhound", "Bluetick": "Bluetick Coonhound",
    "Boston Bull": "Boston Terrier", "Brabancon Griffon": "Brussels Griffon",
    "Brittany Spaniel": "Brittany", "Bull Mastiff": "Bullmastiff", "Cairn": "Cairn Terrier",
    "Cardigan": "Cardigan Welsh Corgi", "Chow": "Chow Chow", "Clumber": "Clumber Spaniel",
    "Dandie Dinmont": "Dandie Dinmont Terrier", "Doberman": "Doberman Pinscher",
    "English Springer": "English Springer Spaniel", "Entlebucher": "Entlebucher Mountain Dog",
    "German Shepherd": "German Shepherd Dog",
    "German Short-Haired Pointer": "German Shorthaired Pointer", "Groenendael": "Belgian Sheepdog",
    "Japanese Spaniel": "Japanese Chin", "Leonberg": "Leonberger", "Lhasa": "Lhasa Apso",
    "Malinois": "Belgian Malinois", "Maltese Dog": "Maltese", "Mexican Hairless": "Xoloitzcuintli",
    "Pekinese": "Pekingese", "Pembroke": "Pembroke Welsh Corgi", "Redbone": "Redbone Coonhound",
    "Scotch Terrier": "Scottish Terrier", "Shih-Tzu": "Shih Tzu",
    "Soft-Coated Wheaten Terrier": "Soft Coated Wheaten Terrier",
    "Staffordshire Bullterrier": "Staffordshire Bull Terrier", "Standard Poodle": "Poodle",
    "Walker Hound": "Treeing Walker Coonhound", "Wire-Haired Fox Terrier": "Wire Fox Terrier",
}  # fmt: skip

_WNID_FOLDER = re.compile(r"^(n\d{8})-(.+)$")


def breed_slug(name: str) -> str:
    """Return the folder-safe name of a breed: lower case, words joined by underscores."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"breed name {name!r} has no letters or digits")
    return slug


def parse_breed_folder(folder: str) -> tuple[str, str | None]:
    """Return (display name, wnid or None) for a folder such as `n02085620-Chihuahua`."""
    match = _WNID_FOLDER.match(folder)
    wnid, raw = (match.group(1), match.group(2)) if match else (None, folder)
    words = re.split(r"[_ ]+", raw.strip())
    display = " ".join(w[:1].upper() + w[1:] for w in words if w)
    return display, wnid


def search_query(breed: str) -> str:
    """Return the image-search query for a breed, as the original phrased it."""
    return f"{breed} dog"


def imagenet_wnid(breed: str) -> str | None:
    """Return the WordNet id of the ImageNet dog class that is `breed`, or None.

    Matches ImageNet's name (as parse_breed_folder shows it) or its AKC name, case-insensitively,
    so photos found by image search for an AKC breed can start from ImageNet's row for it.
    """
    wanted = breed.casefold()
    akc = {k.casefold(): v.casefold() for k, v in AKC_NAMES_OF_IMAGENET.items()}
    for wnid, folder in DOG_WNIDS_AND_NAMES:
        name = parse_breed_folder(f"{wnid}-{folder}")[0].casefold()
        if wanted in (name, akc.get(name)):
            return wnid
    return None
