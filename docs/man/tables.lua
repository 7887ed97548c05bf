-- pandoc filter for the man pages: a table becomes a definition list (its
-- first column the term, the others "header: value"), which a terminal of
-- any width shows without troff's "table wider than line width".
local function inlines(cell)
  return pandoc.utils.blocks_to_inlines(cell.contents)
end

function Table(tbl)
  local headers = {}
  for i, cell in ipairs(tbl.head.rows[1].cells) do
    headers[i] = pandoc.utils.stringify(cell.contents)
  end
  local items = {}
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do
      local def = {}
      for i = 2, #row.cells do
        local value = inlines(row.cells[i])
        if #value > 0 then
          if #def > 0 then
            table.insert(def, pandoc.Str(";"))
            table.insert(def, pandoc.Space())
          end
          if i < #row.cells or headers[i] ~= "what it is" then
            table.insert(def, pandoc.Emph({pandoc.Str(headers[i] .. ":")}))
            table.insert(def, pandoc.Space())
          end
          for _, x in ipairs(value) do
            table.insert(def, x)
          end
        end
      end
      table.insert(items, {inlines(row.cells[1]), {pandoc.Plain(def)}})
    end
  end
  return pandoc.DefinitionList(items)
end
