CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2) NOT NULL, stock int NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, item_id int NOT NULL REFERENCES items(id), qty int NOT NULL);
INSERT INTO items VALUES (1, 'pen', 1.50, 100), (2, 'cup', 4.25, 20), (3, 'lamp', 19.90, 5);
