#!/usr/bin/env python3
"""Writes a deterministic synthetic legacy MAPCE extract (CSV) for the
import benchmark: persons repeated over rows, DNI for most, messy labels
(names, aliases, codes, case and accent variants), both date spellings,
semicolons, and about 1 % bad rows.

Usage: legacy-extract.py ROWS OUT.csv [SEED]"""
import json
import random
import sys
import unicodedata
from datetime import date, timedelta

rows, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
root = __file__.rsplit("/bench/", 1)[0]

consulates = []
for line in open(f"{root}/src/reference/consulates.tsv", encoding="utf-8"):
    if line.startswith("#") or not line.strip():
        continue
    cols = line.rstrip("\n").split("\t")
    consulates.append((cols[0], cols[2], cols[3]))
types = json.load(open(f"{root}/src/reference/attention_types.json", encoding="utf-8"))
labels = []
for t in types:
    labels += [t["code"], t["name_es"], t["name_es"].upper()] + t.get("aliases", [])


def strip_accents(s):
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


labels += [strip_accents(l) for l in labels]
channels = ["phone", "Teléfono", "ventanilla del consulado", "Cita electrónica", "consulate_window", "Correo institucional"]
given_f = ["María", "Rosa", "Ana", "Carmen", "Luz", "Juana", "Elena", "Sofía", "Lucía", "Milagros",
           "Patricia", "Gloria", "Julia", "Teresa", "Flor", "Norma", "Diana", "Carla", "Valeria", "Isabel",
           "Silvia", "Nancy", "Yolanda", "Liliana", "Gabriela", "Mónica", "Sandra", "Roxana", "Pilar", "Victoria"]
given_m = ["José", "Juan", "Luis", "Carlos", "Jorge", "Pedro", "Miguel", "César", "Víctor", "Manuel",
           "Javier", "Alberto", "Raúl", "Walter", "Óscar", "Julio", "Marco", "Fernando", "Ricardo", "Hugo",
           "Daniel", "Edwin", "Wilmer", "Percy", "Alex", "Diego", "Renzo", "Iván", "Héctor", "Félix"]
surnames = ["Quispe", "Flores", "Rodríguez", "Sánchez", "García", "Huamán", "Mamani", "Rojas", "Vásquez",
            "Chávez", "Ramos", "Torres", "Díaz", "Mendoza", "Castillo", "Ramírez", "Gonzales", "Espinoza",
            "López", "Pérez", "Condori", "Salazar", "Cruz", "Gutiérrez", "Morales", "Vargas", "Reyes",
            "Córdova", "Medina", "Aguilar", "Romero", "Herrera", "Cárdenas", "Castro", "Ruiz", "Palomino",
            "Ccama", "Apaza", "Ticona", "Huanca", "Paredes", "Fernández", "Alvarado", "Vega", "Núñez",
            "Campos", "Silva", "Tello", "Cáceres", "Zapata", "Benites", "Soto", "Arias", "Lazo", "Ayala",
            "Meza", "Rivera", "Navarro", "Jiménez", "Ortiz"]
persons = []
n_persons = max(1, rows * 2 // 5)
for i in range(n_persons):
    female = rng.random() < 0.5
    pool = given_f if female else given_m
    given = rng.choice(pool) if rng.random() < 0.5 else f"{rng.choice(pool)} {rng.choice(pool)}"
    name = f"{given} {rng.choice(surnames)} {rng.choice(surnames)}"
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 29000)) if rng.random() < 0.9 else None
    dni = f"{10000000 + i:08d}" if rng.random() < 0.9 else ""
    sex = rng.choice(["F", "Mujer", "Femenino"]) if female else rng.choice(["M", "Hombre", "Masculino"])
    if rng.random() < 0.01:
        sex = ""
    persons.append((name, birth, dni, sex, rng.choice(consulates)))
start = date(2015, 1, 1)
with open(out, "w", encoding="utf-8", newline="") as f:
    f.write("fecha;consulado;pais;tipo_documento;numero_documento;nombres;sexo;fecha_nacimiento;tipo_atencion;canal\n")
    for _ in range(rows):
        name, birth, dni, sex, (code, country, city) = rng.choice(persons)
        day = start + timedelta(days=rng.randrange(0, 3650))
        if birth and birth > day:
            birth_s = ""
        elif birth:
            birth_s = birth.isoformat() if rng.random() < 0.5 else birth.strftime("%d/%m/%Y")
        else:
            birth_s = ""
        when = day.isoformat() if rng.random() < 0.5 else day.strftime("%d/%m/%Y")
        label = rng.choice(labels)
        consulate = code if rng.random() < 0.7 else city
        if rng.random() < 0.01:  # a bad row: unknown label, bad date or bad DNI
            kind = rng.randrange(3)
            if kind == 0:
                label = "Trámite sin clasificar"
            elif kind == 1:
                when = "31/02/2020"
            else:
                dni = "12AB"
        f.write(f"{when};{consulate};{country};{'DNI' if dni else ''};{dni};{name};{sex};{birth_s};{label};{rng.choice(channels)}\n")
